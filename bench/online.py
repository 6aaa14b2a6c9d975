"""Issue 23's figures: the online loop, measured on a synthetic shop whose ground truth is known.

    python bench/online.py [--parts loop,shift,etl] [--events 20000] [--etl-events 1000000] [--work DIR]

loop   Closed-loop shoppers (`stream produce --closed-loop`, the service in process) shown the
       model's lists or the most bought products (half the sessions each), their events through
       the transformation and the delivery into the sink, `etl events`, `recpipe report`:
       click-through per arm with 95% intervals, a perfect list's (the ground truth's own top 10),
       the share of clicks attributed to their list, and the lag from the newest event to the
       report's figure (delivery buffer 1 s).
shift  The shop's taste shifts: a random 15% of the products become e^3 = 20x more attractive to
       everyone (trending), and only the events show it. The drift watch's population stability
       index of the products in the events against the training set, with and without the shift. A model trained on the ratings alone
       (`--no-events`) and one trained with the events are scored by Recall@10 on two new
       choices per customer drawn from the shifted truth, against popularity and the oracle
       (the shifted truth itself); and the ratings-only model on choices from the old truth.
etl    `etl events` on --etl-events delivered records (the producer's real events, with lists of
       10 products as the stream writes them, in 5 MB objects), against reading the same files'
       bytes and splitting their lines (the raw read): events/s and the ratio.

Set-up through recpipe itself: the "small" shop (2,000 customers, 200 products), the DuckDB
ETL, `train`, `vectors load` into the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import report, shoppers
from common import small_shop as build

from recpipe.adapters import (
    open_artifacts,
    open_lake,
    open_recommendations,
    open_stream,
    open_vectors,
)
from recpipe.contracts.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS
from recpipe.contracts.events import enriched
from recpipe.etl.online import run as read_sink
from recpipe.report.attribution import Rate
from recpipe.report.pipeline import run as run_report
from recpipe.streaming.deliver import DeliveryOptions
from recpipe.streaming.pipeline import run as deliver
from recpipe.streaming.produce import Shoppers
from recpipe.streaming.produce import run as produce
from recpipe.streaming.transform import enricher_from_settings, transform_with_reasons
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.training.reading import read_ratings
from recpipe.vectors.files import parse_embeddings

TRENDING, LIFT = 0.15, 3.0  # the shift: this share of the products, this much more attractive (log)


def fresh(settings: Any, work: Path, name: str) -> Any:
    """The settings with their own stream, sink and lake copy under ``work/name``."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(settings.lake_url, root / "lake", ignore=shutil.ignore_patterns("events*", "impressions", "_recpipe"))
    return dataclasses.replace(settings, stream_url=str(root / "stream"), recommendations_url=str(root / "sink"),
                               lake_url=str(root / "lake"), artifacts_url=settings.artifacts_url)


# -- loop ----------------------------------------------------------------------------------------
def loop(settings: Any, work: Path, events: int) -> dict[str, Any]:
    from recpipe.api.service import Service
    from recpipe.api.storefront import ServiceStorefront
    from recpipe.streaming.closed_loop import ClosedLoop, lists_by_arm

    s = fresh(settings, work, "loop")
    service = Service(s)
    simulation = ClosedLoop(shoppers(s, seed=11), ServiceStorefront(service))
    try:
        produced = produce(open_stream(s.stream_url), simulation, rate=1e6, count=events)
    finally:
        service.close()
    stopped = time.time()
    enricher = enricher_from_settings(s)
    deliver(open_stream(s.stream_url), open_recommendations(s.recommendations_url),
            lambda e: transform_with_reasons(e, enricher), DeliveryOptions(until_idle=1.0))
    read_sink(open_recommendations(s.recommendations_url), open_lake(s.lake_url))
    got = run_report(open_lake(s.lake_url))
    lag = got.lag_seconds()
    arms = lists_by_arm(got.lines)
    rates = {k: Rate.of(c, n) for k, (n, c) in arms.items()}
    return {"events": produced.events, "seconds": produced.seconds, "simulation": simulation.summary(),
            "report": {k: {"impressions": n, "clicks": c, "ctr": dataclasses.asdict(rates[k])} for k, (n, c) in arms.items()},
            "overlap": rates["model"].overlaps(rates["popular"]), "attribution": got.pointing,
            "lag_seconds": round(lag, 2) if lag is not None else None,
            "seconds_from_last_event_to_report": round(time.time() - stopped, 2)}


# -- shift ---------------------------------------------------------------------------------------
def shifted(sim: Shoppers, seed: int) -> tuple[Any, np.ndarray]:
    truth = sim.choice
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(truth.sellable)
    trend = np.sort(rng.choice(pool, int(TRENDING * len(pool)), replace=False))
    item = truth.item.copy()
    item[trend, -1] += LIFT  # the popularity column: every customer's logit of these products rises
    return dataclasses.replace(truth, item=item), trend


def embeddings(artifacts: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    import pyarrow as pa

    root = Path(artifacts)
    users = parse_embeddings((root / USER_EMBEDDINGS).read_bytes(), "users", id_type=pa.int32())
    items = parse_embeddings((root / ITEM_EMBEDDINGS).read_bytes(), "items", id_type=pa.string())
    return (users.ids.to_numpy().astype(np.int64), users.vectors, items.ids.to_pylist(), items.vectors)


def recall(scores: np.ndarray, seen: list[set[int]], held: np.ndarray) -> float:
    s = scores.copy()
    for r, rows in enumerate(seen):
        s[r, list(rows)] = -np.inf
    top = np.argsort(-s, axis=1)[:, :10]
    return float(np.mean([len(set(top[r]) & set(held[r])) / len(held[r]) for r in range(len(held))]))


def into_lake(s: Any, sim: Shoppers, events: int) -> Any:
    """``events`` of ``sim``'s shoppers through the transformation and the sink into the lake."""
    enricher = enricher_from_settings(s)
    sink = open_recommendations(s.recommendations_url)
    lines: list[bytes] = []
    for start in range(0, events, 500):
        batch = sim.next_events(min(500, events - start))
        doc = {"records": [{"recordId": str(start + i), "data": base64.b64encode(e.to_bytes()).decode()}
                           for i, e in enumerate(batch)]}
        answer, _ = transform_with_reasons(doc, enricher)
        lines += [base64.b64decode(r["data"]) for r in answer["records"] if r["result"] == "Ok"]
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime())
    sink.write_bytes(f"{hour}/recpipe-1-shift", b"".join(lines))
    lake = open_lake(s.lake_url)
    read_sink(sink, lake)
    return lake


def shift(settings: Any, work: Path, events: int) -> dict[str, Any]:
    # the drift watch's control: as many events from the unshifted taste, in a lake of their own
    control = run_report(into_lake(fresh(settings, work, "shift-control"), shoppers(settings, seed=22), events))
    s = fresh(settings, work, "shift")
    sim = shoppers(s, seed=21)
    before = sim.choice
    after, trend = shifted(sim, seed=5)
    sim.choice = after  # the shoppers on the stream now choose by the shifted taste
    lake = into_lake(s, sim, events)
    drift = {"psi_without_the_shift": control.drift["products"]["psi"],
             "psi_after_the_shift": run_report(lake).drift["products"]["psi"]}
    models = {}
    for name, use in (("without events", False), ("with events", True)):
        store, art = open_artifacts(str(work / "shift" / name.replace(" ", "-")))
        m = train(lake, store, art, TrainOptions(rating_baseline=False, events=use))
        models[name] = (m, str(work / "shift" / name.replace(" ", "-")))
    data = read_ratings(lake)
    customers = data.users["customerNumber"].to_numpy().astype(np.int64)
    products = data.items["productCode"].to_pylist()
    rows_of = {c: i for i, c in enumerate(sim.products)}
    cols = np.array([rows_of[p] for p in products])  # the truth's product rows, in the dataset's order
    sample = np.random.default_rng(1).choice(len(customers), min(1500, len(customers)), replace=False)
    truth_rows = np.array([sim.rows[int(c)] for c in customers[sample]])
    seen: list[set[int]] = [set() for _ in sample]
    where = {int(u): r for r, u in enumerate(sample)}
    for u, i in zip(data.user.tolist(), data.item.tolist(), strict=True):
        if u in where:
            seen[where[u]].add(i)
    from recpipe.etl.online import read_online

    code_col = {p: j for j, p in enumerate(products)}
    ev = read_online(lake, "events", ["customer_number", "product_code"]).to_pylist()
    row_of_customer = {int(c): r for r, c in enumerate(customers)}
    for e in ev:
        r = row_of_customer.get(e["customer_number"]) if e["customer_number"] is not None else None
        if r in where and e["product_code"] in code_col:
            seen[where[r]].add(code_col[e["product_code"]])
    rng = np.random.default_rng(2)

    def draw(model: Any) -> np.ndarray:  # two new choices per sampled customer from ``model``
        logits = model.logits(truth_rows)[:, cols]
        keys = logits + rng.gumbel(size=logits.shape)
        for r, rows in enumerate(seen):
            keys[r, list(rows)] = -np.inf
        return np.argsort(-keys, axis=1)[:, :2]

    held_after, held_before = draw(after), draw(before)
    out: dict[str, Any] = {"trending_products": len(trend), "lift": LIFT, "events": events,
                           "customers_scored": len(sample), "drift": drift}
    oracle_after = after.logits(truth_rows)[:, cols]
    oracle_before = before.logits(truth_rows)[:, cols]
    out["oracle"] = {"after": recall(oracle_after, seen, held_after), "before": recall(oracle_before, seen, held_before)}
    pop = np.bincount(data.item, minlength=len(products)).astype(float)
    out["popularity"] = {"after": recall(np.tile(pop, (len(sample), 1)), seen, held_after)}
    for name, (m, path) in models.items():
        ids, users, item_ids, items = embeddings(path)
        at = {int(c): i for i, c in enumerate(ids)}
        order = [item_ids.index(p) for p in products]
        scores = users[[at[int(c)] for c in customers[sample]]] @ items[order].T
        out[name] = {"after": recall(scores, seen, held_after), "events_used": m.training["events"]}
        if name == "without events":
            out[name]["before"] = recall(scores, seen, held_before)
    a, b = out["without events"], out["with events"]
    o = out["oracle"]
    out["share_of_oracle"] = {"without events, before": a["before"] / o["before"], "without events, after": a["after"] / o["after"],
                              "with events, after": b["after"] / o["after"]}
    lost = out["share_of_oracle"]["without events, before"] - out["share_of_oracle"]["without events, after"]
    out["recovered"] = (out["share_of_oracle"]["with events, after"] - out["share_of_oracle"]["without events, after"]) / lost \
        if lost > 0 else None
    return out


# -- etl -----------------------------------------------------------------------------------------
def etl(settings: Any, work: Path, n: int) -> dict[str, Any]:
    s = fresh(settings, work, "etl")
    sim = shoppers(s, seed=31)
    rng = np.random.default_rng(0)
    catalog = sim.products
    sink = Path(s.recommendations_url)
    written, lines, size, part = 0, [], 0, 0
    t0 = time.perf_counter()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime())

    def flush() -> None:
        nonlocal lines, size, part
        path = sink / hour / f"recpipe-1-{part:06d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(lines))
        lines, size, part = [], 0, part + 1

    while written < n:
        for e in sim.next_events(min(5000, n - written)):
            picks = rng.choice(len(catalog), 20, replace=False)
            record = enriched(e, [{"id": catalog[i], "score": 0.5} for i in picks[:10]],
                              e.browse_history[-1].product_code if e.browse_history else None,
                              [{"id": catalog[i], "score": 0.4} for i in picks[10:]],
                              recommendation_id=f"{rng.integers(1 << 62):016x}", model_version="bench",
                              strategy="session", recommended_at=now)
            line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
            lines.append(line)
            size += len(line)
            if size >= 5_000_000:
                flush()
        written = min(n, written + 5000)
    if lines:
        flush()
    files = sorted((sink / hour).iterdir())
    total = sum(f.stat().st_size for f in files)
    print(f"wrote {n:,} records, {total / 1e6:,.0f} MB in {len(files)} objects in {time.perf_counter() - t0:.0f} s",
          flush=True)
    t0 = time.perf_counter()
    raw = sum(len(f.read_bytes().split(b"\n")) - 1 for f in files)
    raw_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = read_sink(open_recommendations(s.recommendations_url), open_lake(s.lake_url))
    etl_seconds = time.perf_counter() - t0
    return {"records": n, "raw_lines": raw, "bytes": total, "objects": len(files), "raw_seconds": round(raw_seconds, 2),
            "etl_seconds": round(etl_seconds, 2), "raw_per_second": round(n / raw_seconds),
            "etl_per_second": round(n / etl_seconds), "ratio": round(raw_seconds / etl_seconds, 4),
            "totals": manifest.totals()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="loop,shift,etl")
    parser.add_argument("--events", type=int, default=20_000, help="closed-loop events (loop)")
    parser.add_argument("--shift-events", type=int, default=30_000, help="events after the shift (shift)")
    parser.add_argument("--etl-events", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--name", default="online")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-online-"))
    settings = build(work)
    parts = set(args.parts.split(","))
    doc: dict[str, Any] = {}
    rows: list[tuple[Any, ...]] = []
    try:
        if "loop" in parts:
            r = doc["loop"] = loop(settings, work, args.events)
            for arm, x in r["report"].items():
                c = x["ctr"]
                rows.append(("loop", f"{arm}: click-through (report)", f"{c['rate']:.3f} ({c['low']:.3f}–{c['high']:.3f})",
                             f"{x['impressions']:,} lists"))
                rows.append(("loop", f"{arm}: a perfect list's", f"{r['simulation'][arm]['ceiling_ctr']:.3f}", ""))
            p = r["attribution"]
            rows.append(("loop", "clicks attributed to their list", f"{p['attributed'] / max(1, p['pointing']):.4f}",
                         f"{p['attributed']:,} of {p['pointing']:,}"))
            rows.append(("loop", "lag, newest event → report (s)", f"{r['lag_seconds']}", "delivery buffer 1 s"))
        if "shift" in parts:
            r = doc["shift"] = shift(settings, work, args.shift_events)
            for k, v in r["share_of_oracle"].items():
                rows.append(("shift", f"Recall@10 ÷ oracle, {k}", f"{v:.3f}", ""))
            rows.append(("shift", "with events, after: Recall@10", f"{r['with events']['after']:.3f}",
                         f"without {r['without events']['after']:.3f}, popularity {r['popularity']['after']:.3f}, "
                         f"oracle {r['oracle']['after']:.3f}"))
            rows.append(("shift", "share of the loss recovered", f"{r['recovered']:.2f}" if r["recovered"] is not None
                         else "-", ""))
            rows.append(("shift", "drift watch: products' PSI against the training set",
                         f"{r['drift']['psi_after_the_shift']:.3f}",
                         f"{r['drift']['psi_without_the_shift']:.3f} without the shift; flagged above 0.2"))
        if "etl" in parts:
            r = doc["etl"] = etl(settings, work, args.etl_events)
            rows.append(("etl", "etl events: records/s", f"{r['etl_per_second']:,}", f"{r['etl_seconds']} s"))
            rows.append(("etl", "raw read: records/s", f"{r['raw_per_second']:,}", f"{r['raw_seconds']} s"))
            rows.append(("etl", "etl ÷ raw read", f"{r['ratio']:.4f}", f"{r['bytes'] / 1e6:,.0f} MB"))
    finally:
        open_vectors(settings.vectors_url).stop()
    report(args.name, "the online loop (issue 23), 2 cores", ("part", "figure", "value", "detail"), rows, doc)


if __name__ == "__main__":
    main()
