"""The streaming path for real: the Firehose transformation against a trained model and the
embedded PostgreSQL + pgvector, and the local delivery from the embedded log (and from
Kinesis into S3 on moto's server) into hour-partitioned objects, exactly once."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recpipe.adapters import open_recommendations, open_stream
from recpipe.adapters.base import StreamRecord
from recpipe.config import load_settings
from recpipe.errors import ServiceError
from recpipe.streaming import transform as transform_module
from recpipe.streaming.deliver import FAILED_PREFIX, DeliveryOptions, firehose_event
from recpipe.streaming.enrich import Enricher
from recpipe.streaming.pipeline import run as deliver
from recpipe.streaming.pipeline import status
from recpipe.streaming.transform import enricher_from_settings, transform, transform_with_reasons
from recpipe.vectors.query import VectorQueries
from tests.support.stack import Stack, served_encoder

pytestmark = pytest.mark.integration


@pytest.fixture
def enricher(stack: Stack) -> Enricher:
    """A fresh Lambda environment per test (an outage test breaks the connections it had)."""
    return enricher_from_settings(stack.settings())


def shop(stack: Stack, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(stack.db.conninfo()) as conn:
        return conn.execute(sql).fetchall()


def event(session: str, customer: int | None = None, browsed: list[tuple[str, bool]] = (), **features: Any) -> dict:  # type: ignore[assignment,type-arg]
    return {"session_id": session, "customer_number": customer, "event_time": "2026-11-28T10:00:00Z",
            "browse_history": [{"product_code": c, "quantity": 1, "in_shopping_cart": cart} for c, cart in browsed],
            **features}


def invocation(payloads: list[bytes], ids: list[str] | None = None) -> dict[str, Any]:
    records = [StreamRecord("0", str(i + 1), "k", p, 1_795_860_000_000) for i, p in enumerate(payloads)]
    doc = firehose_event("test", records)
    for r, rid in zip(doc["records"], ids or [], strict=False):
        r["recordId"] = rid
    return doc


def decoded(record: dict[str, Any]) -> dict[str, Any]:
    text = base64.b64decode(record["data"]).decode()
    assert text.endswith("\n") and text.count("\n") == 1
    return json.loads(text)


def test_the_transformation_keeps_firehoses_contract(stack: Stack, enricher: Enricher) -> None:
    customer = shop(stack, "SELECT min(id) FROM user_emb")[0][0]
    items = [r[0] for r in shop(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 3")]
    city = shop(stack, "SELECT 1")  # the database answers
    assert city
    good = [
        event("a", customer, [(items[0], False), (items[1], True)]),
        event("b", None, [("NO_SUCH_CODE", False), (items[2], False), ("ALSO_UNKNOWN", True)], city="Nantes",
              country="France", credit_limit=50000.0),
        event("c", 999_999_999),  # an unknown customer with no features and no history: popular items
    ]
    bad = [b"{not json", b"[1]", json.dumps({"session_id": "x"}).encode(), b"x" * (1024 * 1024 + 1)]
    payloads = [json.dumps(e).encode() for e in good] + bad
    doc = invocation(payloads)
    doc["records"].append({"recordId": "bad-base64", "approximateArrivalTimestamp": 1, "data": "!!notbase64"})
    doc["records"].append(dict(doc["records"][0]))  # a repeated recordId
    response, reasons = transform_with_reasons(doc, enricher)
    out = response["records"]
    assert [r["recordId"] for r in out] == [r["recordId"] for r in doc["records"]]
    assert [r["result"] for r in out] == ["Ok"] * 3 + ["ProcessingFailed"] * 6
    assert set(out[0]) == {"recordId", "result", "data"}
    assert all(r["data"] == doc["records"][i]["data"] for i, r in enumerate(out) if r["result"] != "Ok")
    assert "not JSON" in reasons[out[3]["recordId"]] and "list" in reasons[out[4]["recordId"]]
    assert "repeats" in reasons[out[-1]["recordId"]] and "base64" in reasons["bad-base64"]

    a, b, c = (decoded(r) for r in out[:3])
    assert a["similar_items"]["product_code"] == items[1]  # the latest browsed product
    assert len(a["recommended_items"]) == 10 and a["model_version"] == stack.version
    bought = {r[0] for r in shop(stack, f"SELECT product_code FROM purchases WHERE customer_number = {customer}")}
    with VectorQueries(stack.db) as q:  # the vector database's own top-k for the session's vector, in stock
        from recpipe.inference.session import Activity
        from recpipe.vectors.query import Filters

        vector = served_encoder(stack).user_vector(q.user_vectors([customer])[customer], [Activity(items[0]), Activity(items[1], "cart")],
                                              q.item_vectors(items[:2]))
        expected = [s.id for s in q.items_for_embedding(vector, 10, exclude=items[:2],
                                                        filters=Filters(in_stock=True, not_bought_by=customer))]
    assert a["strategy"] == "session" and [i["id"] for i in a["recommended_items"]] == expected
    assert not ({items[0], items[1]} | bought) & {i["id"] for i in a["recommended_items"]}  # browsed, bought
    assert b["strategy"] == "session" and b["similar_items"]["product_code"] == items[2]  # unknown codes skipped
    assert items[2] not in {i["id"] for i in b["recommended_items"]}
    assert c["strategy"] == "popular" and c["similar_items"] == {"product_code": None, "similar_items": []}
    assert {k: a[k] for k in ("session_id", "customer_number", "browse_history")} == {
        k: good[0][k] for k in ("session_id", "customer_number", "browse_history")}
    assert transform(doc, enricher)["records"][0]["result"] == "Ok"


def test_one_round_trip_per_kind_of_query_for_a_whole_batch(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher = enricher_from_settings(stack.settings())  # a cold cache
    customers = [r[0] for r in shop(stack, "SELECT id FROM user_emb ORDER BY id LIMIT 200")]
    items = [r[0] for r in shop(stack, "SELECT id FROM item_emb ORDER BY id")]
    calls: dict[str, int] = {}
    for name in ("items_for_users", "items_for_embeddings", "similar_items_many"):
        real = getattr(VectorQueries, name)

        def counted(self: VectorQueries, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] = calls.get(_name, 0) + 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(VectorQueries, name, counted)
    # a third browse nothing yet (stored for customers, features for visitors); the others, a session
    events = [event(f"s{i}", customers[i % len(customers)] if i % 2 else None,
                    [(items[i % len(items)], i % 4 == 0)] if i % 3 else [], city="Nantes", country="France")
              for i in range(400)]
    doc = invocation([json.dumps(e).encode() for e in events])
    first = transform(doc, enricher)
    assert all(r["result"] == "Ok" for r in first["records"])
    strategies = {decoded(r)["strategy"] for r in first["records"]}
    assert strategies == {"session", "stored", "features"}
    once = {"items_for_users": 1, "items_for_embeddings": 1, "similar_items_many": 1}  # features (sessions: in process)
    assert calls == once
    again = transform(doc, enricher)  # the same questions: answered from the cache
    assert calls == once
    strip = [{k: v for k, v in decoded(r).items() if k not in ("recommendation_id", "recommended_at")}
             for r in (*first["records"], *again["records"])]
    assert strip[:400] == strip[400:]


def test_a_long_history_is_left_out_and_still_gives_k_items(stack: Stack) -> None:
    from recpipe.streaming.enrich import DEPTH

    enricher = enricher_from_settings(stack.settings())
    customer = shop(stack, "SELECT min(id) FROM user_emb")[0][0]
    plain = decoded(transform(invocation([json.dumps(event("a", customer)).encode()]), enricher)["records"][0])
    cart = [i["id"] for i in plain["recommended_items"]] + [r[0] for r in shop(
        stack, "SELECT id FROM item_emb ORDER BY id LIMIT 5")]
    assert len(set(cart)) > DEPTH
    full = decoded(transform(invocation([json.dumps(event("b", customer, [(c, True) for c in cart])).encode()]),
                             enricher)["records"][0])
    assert len(full["recommended_items"]) == 10 and not set(cart) & {i["id"] for i in full["recommended_items"]}


def test_an_unreachable_vector_database_fails_the_invocation(stack: Stack) -> None:
    settings = load_settings({"artifacts_url": str(stack.artifacts), "vectors_url": "postgresql://u:p@127.0.0.1:1/x"},
                             environ={"RECPIPE_HOME": str(stack.root / "home")})
    with pytest.raises(ServiceError, match=r"127\.0\.0\.1"):
        transform(invocation([json.dumps(event("a", 1)).encode()]), enricher_from_settings(settings))


def test_the_lambda_entry_point_reads_its_settings_from_the_environment(stack: Stack,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = stack.settings()
    monkeypatch.setenv("RECPIPE_ARTIFACTS_URL", settings.artifacts_url)
    monkeypatch.setenv("RECPIPE_VECTORS_URL", settings.vectors_url)
    monkeypatch.setattr(transform_module, "_enricher", None)
    doc = invocation([json.dumps(event("a", None, [], city="Nantes")).encode()])
    for _ in range(2):  # a warm environment reuses its model and connection
        assert transform_module.handler(doc, None)["records"][0]["result"] == "Ok"


# -- delivery ---------------------------------------------------------------------------------------

def produced(n: int, tag: str) -> list[tuple[str, bytes]]:
    """``n`` distinct events (one in ten is not an event at all), keyed by session."""
    out = []
    for i in range(n):
        body = b"not an event %d" % i if i % 10 == 9 else json.dumps(
            event(f"{tag}-{i}", None, [], city="Nantes", country="France")).encode()
        out.append((f"{tag}-{i % 37}", body))
    return out


def delivered(sink_root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ok, failed = [], []
    for path in sorted(sink_root.rglob("*")):
        # readers skip hidden files (Hive, Spark, Athena): a kill mid-write leaves a hidden .tmp
        if path.is_file() and "_recpipe" not in path.parts and not path.name.startswith("."):
            rel = path.relative_to(sink_root).as_posix()
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            (failed if rel.startswith(FAILED_PREFIX) else ok).extend(rows)
    return ok, failed


def test_delivery_writes_each_record_once_by_hour(stack: Stack, enricher: Enricher, tmp_path: Path) -> None:
    stream = open_stream(str(tmp_path / "stream"))
    sink = open_recommendations(str(tmp_path / "recs"))
    sent = produced(600, "d")
    stream.put(sent)
    result = deliver(stream, sink, lambda e: transform_with_reasons(e, enricher),
                     DeliveryOptions(buffer_bytes=20_000, until_idle=0.3))
    ok, failed = delivered(tmp_path / "recs")
    assert result.delivered == 600 and result.counts["ok"] == 540 and result.counts["failed"] == 60
    assert sorted(r["session_id"] for r in ok) == sorted(json.loads(d)["session_id"] for _, d in sent
                                                        if not d.startswith(b"not"))
    assert sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(d for _, d in sent if d.startswith(b"not"))
    assert {f["errorCode"] for f in failed} == {"Lambda.ProcessingFailed"}
    assert all({"attemptsMade", "arrivalTimestamp", "errorMessage", "attemptEndingTimestamp"} <= set(f) for f in failed)
    hours = {p.relative_to(tmp_path / "recs").parts[:4] for p in (tmp_path / "recs").rglob("recpipe-1-*")
             if FAILED_PREFIX.strip("/") not in p.parts}
    now = time.gmtime()
    assert hours <= {(f"{now.tm_year:04}", f"{now.tm_mon:02}", f"{now.tm_mday:02}", f"{h:02}")
                     for h in (now.tm_hour, (now.tm_hour - 1) % 24)}
    again = deliver(stream, sink, lambda e: transform_with_reasons(e, enricher), DeliveryOptions(until_idle=0.2))
    assert again.delivered == 0 and delivered(tmp_path / "recs")[0] == ok  # nothing twice
    st = status(stream, sink)
    assert all(s["lag"] == 0 for s in st["shards"]) and st["counts"]["ok"] == 540 and not st["pending"]


def test_an_outage_of_the_vector_database_is_retried_then_delivered(stack: Stack, tmp_path: Path) -> None:
    enricher = enricher_from_settings(stack.settings())  # its own connection: the outage breaks it
    stream = open_stream(str(tmp_path / "stream"))
    sink = open_recommendations(str(tmp_path / "recs"))
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(deliver(stream, sink, lambda e: transform_with_reasons(e, enricher),
                                   DeliveryOptions(until_idle=6.0, retry_seconds=120, buffer_seconds=0.2)))
        except BaseException as exc:  # shown by the assertion below, not lost with the thread
            results.append(exc)

    worker = threading.Thread(target=work)
    assert stack.db.stop()
    try:
        worker.start()
        stream.put(produced(50, "o"))
        time.sleep(2.0)  # the transformation fails and is retried meanwhile
    finally:
        stack.db.conninfo()  # the database comes back
    worker.join(90)
    assert results and not isinstance(results[0], BaseException), results
    assert results[0].counts["ok"] == 45 and results[0].counts["retries"] >= 1
    assert len(delivered(tmp_path / "recs")[0]) == 45


def test_delivery_through_kinesis_into_s3(stack: Stack, enricher: Enricher, s3_bucket: str) -> None:
    import boto3

    client = boto3.client("kinesis")
    client.create_stream(StreamName="clicks", ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    stream = open_stream("kinesis://clicks")
    sink = open_recommendations(f"s3://{s3_bucket}/recommendations")
    stream.put(produced(200, "k"))
    result = deliver(stream, sink, lambda e: transform_with_reasons(e, enricher), DeliveryOptions(until_idle=0.5))
    assert (result.counts["ok"], result.counts["failed"]) == (180, 20)
    keys = sink.list_files()  # type: ignore[attr-defined]
    assert any(k.startswith(FAILED_PREFIX) for k in keys) and any(k[:4].isdigit() for k in keys)
    lines = [json.loads(line) for k in keys if k[:4].isdigit() for line in sink.read_bytes(k).decode().splitlines()]
    assert len(lines) == 180 and len({r["session_id"] for r in lines}) == 180


def test_killed_at_random_points_the_delivery_loses_and_repeats_nothing(stack: Stack, tmp_path: Path) -> None:
    settings = stack.settings()
    env = {**os.environ, "RECPIPE_HOME": str(tmp_path / "home"), "RECPIPE_STREAM_URL": str(tmp_path / "stream"),
           "RECPIPE_RECOMMENDATIONS_URL": str(tmp_path / "recs"), "RECPIPE_ARTIFACTS_URL": settings.artifacts_url,
           "RECPIPE_VECTORS_URL": settings.vectors_url}
    sent = produced(8_000, "x")
    open_stream(str(tmp_path / "stream")).put(sent)
    rng = random.Random(7)
    state = tmp_path / "recs" / "_recpipe" / "delivery" / "recpipe.json"

    def objects() -> int:
        try:
            return json.loads(state.read_text())["counts"]["objects"]
        except (OSError, ValueError):
            return 0

    kills = 0
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "recpipe", "stream", "deliver", "--json", "--buffer-mb",
                                 "0.002", "--until-idle", "0.5"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if attempt < 3:  # killed mid-work: once a few more objects are out, at a random moment after that
            target, deadline = objects() + rng.randint(2, 6), time.monotonic() + 120
            while objects() < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            assert proc.poll() is None, "the delivery finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            continue
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    ok, failed = delivered(tmp_path / "recs")
    assert kills == 3 and 0 < json.loads(out)["delivered"] < len(sent)  # the kills landed mid-delivery
    assert sorted(r["session_id"] for r in ok) == sorted(json.loads(d)["session_id"] for _, d in sent
                                                        if not d.startswith(b"not"))
    assert sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(d for _, d in sent if d.startswith(b"not"))
    assert json.loads(out)["counts"]["ok"] == 7_200


GARBAGE = st.one_of(st.binary(max_size=64), st.sampled_from([b"[]", b"{}", b"null", b'{"session_id": 1}']),
                    st.builds(lambda e: json.dumps(e).encode(), st.fixed_dictionaries(
                        {"session_id": st.text(min_size=1, max_size=5), "event_time": st.just("2026-11-28T10:00:00Z"),
                         "browse_history": st.lists(st.fixed_dictionaries(
                             {"product_code": st.sampled_from(["S10_1678", "NOPE", ""]),
                              "quantity": st.integers(-1, 3), "in_shopping_cart": st.booleans()}), max_size=3)},
                        optional={"customer_number": st.one_of(st.none(), st.integers(-5, 10**10)),
                                  "credit_limit": st.one_of(st.none(), st.floats(), st.booleans())})))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(GARBAGE, min_size=1, max_size=30), repeat=st.booleans())
def test_any_batch_answers_every_record_once(enricher: Enricher, payloads: list[bytes], repeat: bool) -> None:
    doc = invocation(payloads)
    if repeat:
        doc["records"].append(dict(doc["records"][0]))
    response, reasons = transform_with_reasons(doc, enricher)
    out = response["records"]
    assert [r["recordId"] for r in out] == [r["recordId"] for r in doc["records"]]  # none lost, none added
    for given_, answered in zip(doc["records"], out, strict=True):
        if answered["result"] == "Ok":
            assert decoded(answered)["recommendation_id"]
        else:
            assert answered["result"] == "ProcessingFailed" and answered["data"] == given_["data"]
    assert len(reasons) == sum(r["result"] != "Ok" for r in out) - (1 if repeat and out[0]["result"] != "Ok" else 0)


def test_the_seeds_set_up_asks_the_inference_service_over_http(stack: Stack, enricher: Enricher) -> None:
    """RECPIPE_INFERENCE_URL: the same records from a real `recpipe serve` as from in-process."""
    from tests.support import serve

    settings = stack.settings()
    env = {**os.environ, **settings.environment(), "RECPIPE_SERVE_RELOAD_EVERY": "0.5"}
    server, url = serve.start(env)
    try:
        assert serve.wait_ready(url), server.stderr.read() if server.stderr else ""
        remote = enricher_from_settings(load_settings({"inference_url": url + "/"},
                                                      environ={"RECPIPE_HOME": str(stack.root / "home")}))
        customer = shop(stack, "SELECT min(id) FROM user_emb")[0][0]
        items = [r[0] for r in shop(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 3")]
        batch = [event("a", customer, [(items[0], False), (items[1], True)]),
                 event("b", None, [("NO_SUCH_CODE", False), (items[2], False)], city="Nantes", country="France")]
        doc = invocation([json.dumps(e).encode() for e in batch])
        there = [decoded(r) for r in transform(doc, remote)["records"]]
        here = [decoded(r) for r in transform(doc, enricher)["records"]]
        # the same products in the same order; a score may differ in its sixth decimal (the
        # service scores in another batch shape, and a value can sit on a rounding boundary)
        assert [i["id"] for i in there[0]["recommended_items"]] == [i["id"] for i in here[0]["recommended_items"]]
        assert [i["score"] for i in there[0]["recommended_items"]] == pytest.approx(
            [i["score"] for i in here[0]["recommended_items"]], abs=2e-6)
        assert there[0]["strategy"] == "session"
        assert there[0]["model_version"] == here[0]["model_version"] == stack.version
        assert [i["id"] for i in there[1]["recommended_items"]] == [i["id"] for i in here[1]["recommended_items"]]
        assert there[1]["strategy"] == here[1]["strategy"] == "session"
        assert there[1]["similar_items"]["product_code"] == items[2]  # the unknown code skipped there too
        assert items[1] not in {i["id"] for i in there[0]["similar_items"]["similar_items"]}
    finally:
        server.terminate()
        server.wait(10)
    with pytest.raises(ServiceError, match="cannot reach the inference service"):
        transform(doc, remote)


def test_the_answer_stays_under_firehoses_limit(stack: Stack, enricher: Enricher) -> None:
    """Enrichment makes small records several times larger: a request well under 6 MB can ask for more than
    6 MB back. The last records then fail (their input kept) and the answer fits."""
    from recpipe.contracts.limits import FIREHOSE_LAMBDA_MAX_BYTES

    customer = shop(stack, "SELECT min(id) FROM user_emb")[0][0]
    doc = invocation([json.dumps(event(f"s{n}", customer), separators=(",", ":")).encode() for n in range(8000)])
    response, reasons = transform_with_reasons(doc, enricher)
    results = [r["result"] for r in response["records"]]
    assert len(json.dumps(doc)) < FIREHOSE_LAMBDA_MAX_BYTES / 1.5  # a request Firehose can send
    assert len(json.dumps(response)) <= FIREHOSE_LAMBDA_MAX_BYTES
    assert 0 < results.count("ProcessingFailed") < 4000 and results == sorted(results)  # a suffix, in order
    assert all("exceed Firehose" in reasons[r["recordId"]] for r in response["records"]
               if r["result"] == "ProcessingFailed")
