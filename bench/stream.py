"""The streaming path end to end: events/s, the handler's time per batch, event → object latency.

    python bench/stream.py [--events 30000] [--work DIR] [--skip-moto]

Set-up through recpipe itself: the demo's shop (2,000 customers, 200 products; SQLite), the
DuckDB ETL, the retrieval model, `vectors load` into the embedded PostgreSQL. Then, all on the
same 2 cores:

1. Sustained delivery: ``--events`` simulated shoppers' events put on the embedded log, then
   delivered (read → Firehose-shaped invocation → enrichment with pgvector → objects by hour)
   with three transformations in the same run: recpipe's (batched, in-process), a pass-through
   (the cost of the delivery alone) and the seed's pattern (three HTTP calls per record to
   `recpipe serve`: /user_embeddings, /items_from_user, /items_from_item; on a tenth of the
   events, it is that slow).
2. The handler alone: time per 500-record invocation, p50 / p99 over 40 batches.
3. Latency: shoppers at a steady 1,000 events/s for 10 s while the delivery runs with a 1 s
   buffer; per record, the time from the event to its object being written.
4. The same delivery through Kinesis and S3 served by moto on 127.0.0.1 (a local emulator:
   its figures say what the code costs, not what AWS does).

5. Freshness (issue 22): a click put on the stream → the customer's `/recommendations` answer
   changed, with the delivery running and other shoppers at 200 events/s; baseline: 3.'s
   event → object latency.

Targets (issue 12): ≥ 5,000 events/s end to end on the embedded path; handler p99 ≤ 100 ms
per 500 records; event → object p99 ≤ 2 s with a 1 s buffer. Issue 22: freshness p95 ≤ 2 s.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import report, shoppers
from common import small_shop as build
from tests.support import serve

from recpipe.adapters import (
    open_recommendations,
    open_stream,
    open_vectors,
)
from recpipe.adapters.base import StreamRecord
from recpipe.streaming.deliver import DeliveryOptions, firehose_event
from recpipe.streaming.pipeline import run as deliver
from recpipe.streaming.produce import run as produce
from recpipe.streaming.transform import enricher_from_settings, transform_with_reasons


def pass_through(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return {"records": [{"recordId": r["recordId"], "result": "Ok",
                         "data": base64.b64encode(base64.b64decode(r["data"]) + b"\n").decode()}
                        for r in event["records"]]}, {}


def seed_pattern(url: str) -> Any:
    """The seed's Lambda: per record, the user's embedding, items for it, items like the last
    browsed product — three HTTP calls to the inference service."""
    client = httpx.Client(base_url=url, timeout=30)

    def transform(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        out = []
        for r in event["records"]:
            e = json.loads(base64.b64decode(r["data"]))
            user = {"city": e.get("city"), "country": e.get("country"), "creditlimit": e.get("credit_limit")}
            emb = client.post("/user_embeddings", json=[user]).json()[0]
            items = client.post("/items_from_user", params={"limit": 10}, json=emb).json()
            similar = []
            if e["browse_history"]:
                similar = client.get("/items_from_item", params={"item_id": e["browse_history"][-1]["product_code"],
                                                                 "limit": 10}).json()
            line = json.dumps({**e, "recommended_items": items, "similar_items": similar}) + "\n"
            out.append({"recordId": r["recordId"], "result": "Ok", "data": base64.b64encode(line.encode()).decode()})
        return {"records": out}, {}

    return transform


def sustained(settings: Any, work: Path, tag: str, transform: Any, events: int, stream_url: str | None = None,
              sink_url: str | None = None) -> dict[str, Any]:
    stream = open_stream(stream_url or str(work / f"stream-{tag}"))
    sink = open_recommendations(sink_url or str(work / f"recs-{tag}"))
    t0 = time.perf_counter()
    produce(stream, shoppers(settings), rate=1e9, count=events)
    produced = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = deliver(stream, sink, transform, DeliveryOptions(name=tag, until_idle=0.5))
    seconds = time.perf_counter() - t1 - 0.5  # the idle wait that ends the run is not work
    total = time.perf_counter() - t0 - 0.5
    assert result.counts["ok"] == events, result
    row = {"events": events, "produce_seconds": round(produced, 3), "deliver_seconds": round(seconds, 3),
           "deliver_events_per_s": round(events / seconds, 1), "end_to_end_events_per_s": round(events / total, 1),
           "objects": result.counts["objects"]}
    print(tag, row, flush=True)
    return row


def handler_batches(settings: Any, n: int = 40) -> dict[str, Any]:
    """A fresh Lambda environment: the first batch (cold: model, catalog, empty answer cache),
    then ``n`` more of the same shoppers' next events."""
    enricher = enricher_from_settings(settings)
    events = shoppers(settings).next_events(500 * (n + 1))
    records = [StreamRecord("0", str(i), e.session_id, e.to_bytes(), 0) for i, e in enumerate(events)]
    t = time.perf_counter()
    transform_with_reasons(firehose_event("bench", records[:500]), enricher)
    cold = time.perf_counter() - t
    times = []
    for b in range(1, n + 1):
        event = firehose_event("bench", records[b * 500:(b + 1) * 500])
        t = time.perf_counter()
        transform_with_reasons(event, enricher)
        times.append(time.perf_counter() - t)
    times.sort()
    return {"batches": n, "records": 500, "cold_first_batch_ms": round(1000 * cold, 1),
            "p50_ms": round(1000 * statistics.median(times), 1),
            "p99_ms": round(1000 * times[min(n - 1, int(0.99 * n))], 1), "max_ms": round(1000 * times[-1], 1)}


def concurrent(settings: Any, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    """A producer process at ``rate`` events/s while the delivery runs: does it keep up?"""
    import subprocess

    env = {**os.environ, **settings.environment(), "RECPIPE_STREAM_URL": str(work / "stream-concurrent"),
           "RECPIPE_RECOMMENDATIONS_URL": str(work / "recs-concurrent")}
    stream = open_stream(env["RECPIPE_STREAM_URL"])
    sink = open_recommendations(env["RECPIPE_RECOMMENDATIONS_URL"])
    enricher = enricher_from_settings(settings)
    producer = subprocess.Popen([sys.executable, "-m", "recpipe", "stream", "produce", "--rate", str(rate),
                                 "--duration", str(seconds), "--json"], env=env, stdout=subprocess.PIPE, text=True)
    finished: dict[str, Any] = {}

    def wait_for_producer() -> None:  # when the last event was put (the producer's start-up is not delivery time)
        finished["out"] = producer.communicate()[0]
        finished["at"] = time.perf_counter()

    waiter = threading.Thread(target=wait_for_producer)
    waiter.start()
    result = deliver(stream, sink, lambda e: transform_with_reasons(e, enricher),
                     DeliveryOptions(name="concurrent", until_idle=3.0))
    done = time.perf_counter() - 3.0
    waiter.join()
    produced = json.loads(finished["out"])
    assert result.counts["ok"] == produced["events"], (result, produced)
    putting = produced["events"] / produced["events_per_second"]
    lag = max(0.0, done - finished["at"])  # how long the delivery ran on after the last event was put
    row = {"offered_rate": rate, "produced": produced["events"], "produced_per_s": produced["events_per_second"],
           "delivered_per_s": round(produced["events"] / (putting + lag), 1), "seconds": round(putting + lag, 2),
           "lag_after_the_last_event_s": round(lag, 2)}
    print("concurrent", row, flush=True)
    return row


def latency(settings: Any, work: Path, rate: float = 1000.0, seconds: float = 10.0) -> dict[str, Any]:
    stream = open_stream(str(work / "stream-latency"))
    sink_root = work / "recs-latency"
    sink = open_recommendations(str(sink_root))
    enricher = enricher_from_settings(settings)
    worker = threading.Thread(target=deliver, args=(stream, sink, lambda e: transform_with_reasons(e, enricher),
                                                    DeliveryOptions(name="latency", buffer_seconds=1.0,
                                                                    until_idle=2.0)))
    worker.start()
    produce(stream, shoppers(settings), rate=rate, count=int(rate * seconds))
    worker.join()
    lags = []
    for path in sink_root.rglob("latency-1-*"):
        if "processing-failed" in path.parts:
            continue
        written = path.stat().st_mtime
        for line in path.read_text().splitlines():
            sent = dt.datetime.fromisoformat(json.loads(line)["event_time"])
            lags.append(written - sent.timestamp())
    lags.sort()
    return {"rate": rate, "seconds": seconds, "records": len(lags), "buffer_seconds": 1.0,
            "p50_s": round(statistics.median(lags), 3), "p99_s": round(lags[int(0.99 * (len(lags) - 1))], 3)}


def freshness(settings: Any, work: Path, probes: int = 40, background: float = 200.0) -> dict[str, Any]:
    """Issue 22's figure: a click put on the stream → the customer's `/recommendations` answer
    changed, with `stream deliver` running (1 s buffer) and other shoppers at ``background``
    events/s. Per probe: a customer with a stored vector, three products not tried before, the
    time from the put until an answer differs (polled every 20 ms). Baseline, same run: the
    same events' event → object latency (the delivery itself)."""
    from recpipe.contracts.events import BrowsedProduct, Event

    stream = open_stream(str(work / "stream-fresh"))
    sink_root = work / "recs-fresh"
    enricher = enricher_from_settings(settings)
    options = DeliveryOptions(name="fresh", buffer_seconds=1.0, until_idle=3.0)
    worker = threading.Thread(target=deliver, args=(stream, open_recommendations(str(sink_root)),
                                                    lambda e: transform_with_reasons(e, enricher), options))
    env = {**os.environ, **settings.environment(), "RECPIPE_SERVE_RELOAD_EVERY": "1"}
    server, url = serve.start(env)
    shopper = shoppers(settings)
    noise = threading.Thread(target=lambda: produce(stream, shopper, rate=background,
                                                    duration=probes * 2.5), daemon=True)
    try:
        assert serve.wait_ready(url), "the service did not start"
        worker.start()
        noise.start()
        client = httpx.Client(base_url=url, timeout=10)
        import psycopg

        with psycopg.connect(open_vectors(settings.vectors_url).conninfo()) as c:
            customers = [r[0] for r in c.execute("SELECT id FROM user_emb ORDER BY id DESC LIMIT %s", (probes,))]
            items = [r[0] for r in c.execute("SELECT id FROM item_emb ORDER BY id")]
        rng = random.Random(7)
        lags, unchanged = [], 0
        for customer in customers:
            before = [i["id"] for i in client.get(f"/recommendations/{customer}").json()["items"]]
            picked = rng.sample(items, 3)
            event = Event(session_id=f"fresh-{customer}", customer_number=customer,
                          event_time=dt.datetime.now(dt.UTC),
                          browse_history=[BrowsedProduct(product_code=p, quantity=1, in_shopping_cart=False)
                                          for p in picked])
            t0 = time.perf_counter()
            stream.put([(event.session_id, event.to_bytes())])
            while time.perf_counter() - t0 < 10:
                got = client.get(f"/recommendations/{customer}").json()
                if got["strategy"] == "session" and [i["id"] for i in got["items"]] != before:
                    lags.append(time.perf_counter() - t0)
                    break
                time.sleep(0.02)
            else:
                unchanged += 1
    finally:
        noise.join()
        worker.join()
        server.terminate()
        server.wait(10)
    lags.sort()
    pick = (lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 3)) if lags else (lambda q: None)
    return {"probes": probes, "changed": len(lags), "unchanged_after_10_s": unchanged, "background_rate": background,
            "buffer_seconds": 1.0, "p50_s": pick(0.5), "p95_s": pick(0.95),
            "max_s": round(lags[-1], 3) if lags else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--skip-moto", action="store_true", help="Leave out the Kinesis + S3 run.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-stream-"))
    settings = build(work)
    enricher = enricher_from_settings(settings)
    results: dict[str, Any] = {"shop": "small (2,000 customers, 200 products)"}
    results["recpipe"] = sustained(settings, work, "recpipe", lambda e: transform_with_reasons(e, enricher),
                                   args.events)
    results["pass_through"] = sustained(settings, work, "passthrough", pass_through, args.events)
    env = {**os.environ, **settings.environment()}
    server, url = serve.start(env)
    try:
        if not serve.wait_ready(url):
            raise SystemExit(f"recpipe serve did not start: {server.stderr.read() if server.stderr else ''}")
        results["seed_pattern"] = sustained(settings, work, "seed", seed_pattern(url), max(500, args.events // 10))
    finally:
        server.terminate()
        server.wait(10)
    results["concurrent"] = concurrent(settings, work, rate=6000.0, seconds=10.0)
    results["handler"] = handler_batches(settings)
    results["latency"] = latency(settings, work)
    results["freshness"] = freshness(settings, work)
    results["freshness"]["vs_event_to_object_p99"] = round(results["freshness"]["p95_s"] / results["latency"]["p99_s"], 2) \
        if results["freshness"]["p95_s"] else None
    if not args.skip_moto:
        results["moto"] = on_moto(settings, work, enricher, args.events // 3)
    r, p, s = results["recpipe"], results["pass_through"], results["seed_pattern"]
    results["ratios"] = {"recpipe_vs_pass_through": round(r["deliver_events_per_s"] / p["deliver_events_per_s"], 3),
                         "recpipe_vs_seed_pattern": round(r["deliver_events_per_s"] / s["deliver_events_per_s"], 1)}
    rows = [(name, results[key]["deliver_events_per_s"], results[key]["end_to_end_events_per_s"],
             results[key]["events"]) for name, key in (("recpipe (batched, in-process)", "recpipe"),
                                                       ("pass-through (delivery alone)", "pass_through"),
                                                       ("seed pattern (3 HTTP calls/record)", "seed_pattern"))
            if key in results]
    if "moto" in results:
        rows.append(("recpipe via Kinesis + S3 (moto, local)", results["moto"]["deliver_events_per_s"],
                     results["moto"]["end_to_end_events_per_s"], results["moto"]["events"]))
    h, lat = results["handler"], results["latency"]
    c = results["concurrent"]
    report("stream", f"streaming: events/s (2 cores); a producer process offering {c['offered_rate']:,.0f}/s "
                     f"(it managed {c['produced_per_s']:,.0f}/s) delivered at {c['delivered_per_s']:,.0f}/s end to end; "
                     f"handler per 500 records p50 {h['p50_ms']} ms, p99 {h['p99_ms']} "
                     f"ms (first, cold batch {h['cold_first_batch_ms']} ms); event → object p50 {lat['p50_s']} s, p99 {lat['p99_s']} s at {lat['rate']:.0f}/s with a "
                     f"1 s buffer; recpipe / seed pattern × {results['ratios']['recpipe_vs_seed_pattern']}; a click → a "
                     f"changed /recommendations p50 {results['freshness']['p50_s']} s, p95 {results['freshness']['p95_s']} s",
           ("transformation", "deliver events/s", "end-to-end events/s", "events"), rows, results)


def on_moto(settings: Any, work: Path, enricher: Any, events: int) -> dict[str, Any]:
    import logging

    from moto.server import ThreadedMotoServer
    from tests.support.mariadb import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
        import boto3

        boto3.client("s3").create_bucket(Bucket="recs")
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="clicks", ShardCount=4)
        kinesis.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.1})
        return sustained(settings, work, "moto", lambda e: transform_with_reasons(e, enricher), events,
                         "kinesis://clicks", "s3://recs/recommendations")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
