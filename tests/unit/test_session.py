"""The pooled session encoder and how events become session-store rows (no database)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.contracts.events import Activity, Event
from recpipe.contracts.limits import MAX_RECENT
from recpipe.inference.session import SessionEncoder
from recpipe.vectors.sessions import rows_of


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


VECTORS = {"A": unit([1, 0, 0]), "B": unit([0, 1, 0]), "C": unit([0, 0, 1])}


def test_an_empty_or_unknown_session_says_nothing() -> None:
    enc = SessionEncoder()
    assert enc.pooled([], VECTORS) is None
    assert enc.pooled([Activity("NOPE"), Activity("ALSO_NOT")], VECTORS) is None
    assert enc.user_vector(None, [Activity("NOPE")], VECTORS) is None
    own = unit([1, 1, 0])
    np.testing.assert_allclose(enc.user_vector(own, [], VECTORS), own, atol=1e-6)  # the customer's own, unchanged


def test_unknown_codes_are_skipped_and_the_latest_weighs_most() -> None:
    enc = SessionEncoder(decay=0.5, cart=1.0)
    got = enc.pooled([Activity("A"), Activity("NOPE"), Activity("B")], VECTORS)
    np.testing.assert_allclose(got, unit([0.5, 1.0, 0.0]), atol=1e-6)  # B latest: 1, A one step back: 0.5


def test_a_carted_product_weighs_more() -> None:
    enc = SessionEncoder(decay=1.0, cart=3.0)
    got = enc.pooled([Activity("A", "cart"), Activity("B")], VECTORS)
    np.testing.assert_allclose(got, unit([3.0, 1.0, 0.0]), atol=1e-6)


def test_only_the_latest_max_recent_count() -> None:
    enc = SessionEncoder(decay=1.0, max_recent=2)
    got = enc.pooled([Activity("C")] * 5 + [Activity("A"), Activity("B")], VECTORS)
    np.testing.assert_allclose(got, unit([1, 1, 0]), atol=1e-6)


def test_a_long_history_is_bounded_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    vectors = {f"P{i}": unit(list(rng.normal(size=32))) for i in range(500)}
    history = [Activity(f"P{i}", "cart" if i % 7 == 0 else "browse") for i in rng.integers(0, 500, 1000)]
    enc = SessionEncoder()
    own = unit(list(rng.normal(size=32)))
    first = enc.user_vector(own, history, vectors)
    assert first is not None and first.shape == (32,) and first.dtype == np.float32
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    again = enc.user_vector(own.copy(), list(history), dict(vectors))
    assert again is not None and again.tobytes() == first.tobytes()  # the same bits every time
    np.testing.assert_allclose(enc.pooled(history, vectors), enc.pooled(history[-MAX_RECENT:], vectors), atol=1e-12)


def test_opposite_products_do_not_cancel_into_nothing() -> None:
    enc = SessionEncoder(decay=1.0, cart=1.0)
    vectors = {"A": unit([1, 0, 0]), "ANTI": unit([-1, 0, 0])}
    np.testing.assert_allclose(enc.pooled([Activity("A"), Activity("ANTI")], vectors), vectors["ANTI"], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "X"]), max_size=30), st.floats(0.05, 1.0), st.floats(0.0, 4.0))
def test_the_user_vector_is_unit_length_or_none(codes: list[str], decay: float, base: float) -> None:
    enc = SessionEncoder(decay=decay, base=base)
    got = enc.user_vector(unit([1, 2, 3]), [Activity(c) for c in codes], VECTORS)
    assert got is not None and abs(float(np.linalg.norm(got)) - 1.0) < 1e-5


def event(session: str, customer: int | None, codes: list[tuple[str, bool]], at: str) -> Event:
    return Event.model_validate({"session_id": session, "customer_number": customer, "event_time": at,
                                 "browse_history": [{"product_code": c, "quantity": 1, "in_shopping_cart": cart}
                                                    for c, cart in codes]})


def test_events_become_one_row_per_owner_and_product_the_latest_winning() -> None:
    early = event("s1", 7, [("A", False), ("B", False)], "2026-12-01T10:00:00Z")
    late = event("s1", 7, [("A", False), ("B", True), ("C", False)], "2026-12-01T10:01:00Z")
    rows = rows_of([late, early])  # out of order: the later event still wins
    assert len(rows) == 6 and {(r.owner_kind, r.owner) for r in rows} == {("customer", "7"), ("session", "s1")}
    by = {(r.owner_kind, r.product_code): r for r in rows}
    assert by[("session", "B")].kind == "cart" and by[("session", "B")].customer_number == 7
    order = sorted((r for r in rows if r.owner_kind == "session"), key=lambda r: r.at)
    assert [r.product_code for r in order] == ["A", "B", "C"]  # the history's order within an event
    assert order[-1].at == dt.datetime(2026, 12, 1, 10, 1, tzinfo=dt.UTC)
    visitor = rows_of([event("v", None, [("A", False)], "2026-12-01T10:00:00Z")])
    assert [(r.owner_kind, r.owner) for r in visitor] == [("session", "v")]


def test_only_an_events_latest_max_recent_products_are_recorded() -> None:
    rows = rows_of([event("s", None, [(f"P{i:03d}", False) for i in range(3 * MAX_RECENT)], "2026-12-01T10:00:00Z")])
    assert sorted(r.product_code for r in rows) == [f"P{i:03d}" for i in range(2 * MAX_RECENT, 3 * MAX_RECENT)]


@pytest.mark.parametrize("kind", ["browse", "cart"])
def test_activity_of_an_event(kind: str) -> None:
    e = event("s", None, [("A", kind == "cart")], "2026-12-01T10:00:00Z")
    assert Activity.of(e) == [Activity("A", kind)]


def test_a_carried_encoder_ranks_the_refits_vectors_as_it_ranked_the_evaluated_ones() -> None:
    """A refit is another basis of the same geometry: the transform turned with it gives the
    same session vectors, turned; a refit unlike the evaluated towers drops the transform."""
    from recpipe.training.session import carry

    rng = np.random.default_rng(3)
    old = rng.normal(size=(60, 8))
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    new = old @ rotation
    enc = SessionEncoder(decay=0.7, base=1.3, transform=(np.eye(8) + 0.3 * rng.normal(size=(8, 8))).astype(np.float32))
    carried, said = carry(enc, old, new)
    assert said["transform"] == "rotated into the refit's basis" and said["alignment"] > 0.999
    assert (carried.decay, carried.base) == (0.7, 1.3)
    history = np.array([[-1, 4, 9, 17]])
    before = enc.user_vectors(None, history, old.astype(np.float32))
    after = carried.user_vectors(None, history, new.astype(np.float32))
    assert np.allclose(before @ rotation, after, atol=1e-5)
    unrelated, said = carry(enc, old, rng.normal(size=(60, 8)))
    assert unrelated.transform is None and said["transform"] == "dropped"
    assert carry(SessionEncoder(), old, new)[1] == {"transform": "none (the identity)"}


def test_the_recorder_prunes_only_the_owners_it_has_crowded() -> None:
    from recpipe.vectors.sessions import Recorder

    rec = Recorder()
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i in range(MAX_RECENT + 2):
        e = Event.model_validate({"session_id": "s", "customer_number": 9, "event_time": (at + dt.timedelta(
            seconds=i)).isoformat(), "browse_history": [{"product_code": f"P{i}", "quantity": 1, "in_shopping_cart": False}]})
        rows = rec.fresh(rows_of([e]))
        crowded = rec.crowded(rows)
        assert crowded == ([] if i < MAX_RECENT else [("customer", "9"), ("session", "s")])
        rec.done(rows)
    again = rows_of([e])  # the same product again: nothing new for the owner, nothing to prune
    assert rec.crowded(rec.fresh(again)) == []
