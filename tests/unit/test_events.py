"""The event contract: what is an event, and a one-line reason for what is not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.contracts.events import Event, parse_event
from recpipe.errors import InputError

GOOD = {"session_id": "a1", "customer_number": 103, "city": "Nantes", "country": "France",
        "credit_limit": 21000.0, "event_time": "2026-11-25T17:00:00Z",
        "browse_history": [{"product_code": "S10_1678", "quantity": 2, "in_shopping_cart": True}]}


def test_the_documented_event_parses_and_round_trips() -> None:
    e = parse_event(json.dumps(GOOD).encode())
    assert (e.customer_number, e.cart, e.features()) == (103, ["S10_1678"], {
        "city": "Nantes", "country": "France", "creditLimit": 21000.0})
    assert parse_event(e.to_bytes()) == e
    visitor = parse_event(json.dumps({**GOOD, "customer_number": None, "credit_limit": 5}).encode())
    assert visitor.customer_number is None and visitor.credit_limit == 5.0


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xfe", "not JSON"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "a JSON list, not an object"),
    (b'"text"', "a JSON str, not an object"),
    (json.dumps({**GOOD, "session_id": ""}).encode(), "session_id"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "event_time"}).encode(), "event_time: field required"),
    (json.dumps({**GOOD, "event_time": "2026-11-25T17:00:00"}).encode(), "event_time"),  # no time zone
    (json.dumps({**GOOD, "credit_limit": False}).encode(), "credit_limit"),
    (json.dumps({**GOOD, "customer_number": "103"}).encode(), "customer_number"),
    (json.dumps({**GOOD, "browse_history": [{"product_code": "S1", "quantity": -1,
                                              "in_shopping_cart": False}]}).encode(), "browse_history.0.quantity"),
    (json.dumps({**GOOD, "creditLimit": 5}).encode(), "creditLimit: extra inputs are not permitted"),
    (b"{" + b" " * (1024 * 1024) + b"}", "more than a stream record may be"),
])
def test_what_is_not_an_event_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match="the record") as info:
        parse_event(data)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_an_empty_browse_history_is_an_event() -> None:
    assert parse_event(json.dumps({**GOOD, "browse_history": []}).encode()).cart == []


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(list(GOOD)), inner, max_size=7),
    max_leaves=20).map(lambda doc: json.dumps(doc).encode())))
def test_any_bytes_are_an_event_or_one_clear_error(data: bytes) -> None:
    try:
        assert isinstance(parse_event(data), Event)
    except InputError as exc:
        assert str(exc).startswith("the record") and "\n" not in str(exc)


def test_the_loop_fields_are_optional_and_absent_ones_stay_out_of_the_json() -> None:
    seed = parse_event(json.dumps(GOOD).encode())
    assert seed.to_json() == {**GOOD, "credit_limit": 21000.0}  # the seed's event comes out as it went in
    assert seed.event_id is None and seed.browse_history[0].kind == "cart"
    looped = {**GOOD, "event_id": "e-1", "browse_history": [
        {"product_code": "S1", "quantity": 1, "in_shopping_cart": False, "recommendation_id": "r-9"},
        {"product_code": "S2", "quantity": 1, "in_shopping_cart": True, "purchased": True}]}
    e = parse_event(json.dumps(looped).encode())
    assert e.event_id == "e-1" and [b.kind for b in e.browse_history] == ["browse", "purchase"]
    assert e.browse_history[0].recommendation_id == "r-9" and parse_event(e.to_bytes()) == e
    assert "recommendation_id" not in e.to_json()["browse_history"][1]


@pytest.mark.parametrize(("change", "reason"), [
    ({"event_id": ""}, "event_id"),
    ({"event_id": 7}, "event_id"),
    ({"event_id": "x" * 129}, "event_id"),
    ({"browse_history": [{"product_code": "S1", "quantity": 1, "in_shopping_cart": False,
                          "recommendation_id": ""}]}, "browse_history.0.recommendation_id"),
    ({"browse_history": [{"product_code": "S1", "quantity": 1, "in_shopping_cart": False,
                          "purchased": "yes"}]}, "browse_history.0.purchased"),
])
def test_a_bad_loop_field_says_which(change: dict, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_event(json.dumps({**GOOD, **change}).encode())
