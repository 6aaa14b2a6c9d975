"""Issue 24's figures: models side by side, on the "small" shop with two trained models loaded.

    python bench/models.py [--parts switch,experiment,throughput] [--events 20000] [--seconds 5] [--work DIR]

switch      `recpipe serve` (a real server) answers 16 client threads asking for stored customers'
            lists while `models promote` serves the other model, then `models rollback` the first
            again: the time from each command to the first answer from the model it serves,
            failed answers (not 200), and mixed answers: an answer whose products are not exactly
            the top of its stated model's own vectors (checked for every answer against that
            version's embeddings in the registry, computed here in numpy; ef_search above the
            catalog's size makes pgvector exact).
experiment  An experiment, popularity (A, the control) against the model (B), 50/50, the shoppers
            of the closed loop (`stream produce --closed-loop`, the service in process) assigned by
            the service; their events delivered and read (`etl events`): `experiments report`'s
            click-through per variant, the difference with its 95% interval, and after how many
            sessions that interval first excluded zero.
throughput  One server, measured in alternating turns with wrk at 16 clients: one model serving
            (the baseline) and an experiment splitting the shoppers between the two loaded models;
            the median requests/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import report, shoppers, small_shop
from serve import wrk
from tests.support import serve

from recpipe.adapters import (
    open_artifacts,
    open_lake,
    open_recommendations,
    open_stream,
    open_vectors,
)
from recpipe.contracts.artifacts import registered
from recpipe.etl.online import run as read_sink
from recpipe.streaming.deliver import DeliveryOptions
from recpipe.streaming.pipeline import run as deliver
from recpipe.streaming.produce import run as produce
from recpipe.streaming.transform import enricher_from_settings, transform_with_reasons
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.vectors import experiments, models
from recpipe.vectors.connect import connect
from recpipe.vectors.pipeline import read_artifacts
from recpipe.vectors.pipeline import run as load_vectors

CLIENTS = 16


def second_model(settings: Any, work: Path) -> tuple[str, str]:
    """(the serving model, another loaded one): the shop's model and a second one trained with
    another seed, both loaded; the second serves."""
    store, name = open_artifacts(settings.artifacts_url)
    db = open_vectors(settings.vectors_url)
    done = work / "second"
    if not done.exists():
        train(open_lake(settings.lake_url), store, name, TrainOptions(rating_baseline=False, fit=FitOptions(seed=7)))
        load_vectors(db, store, name, force=True)
        done.touch()
    listed = models.listing(db, store)
    serving = next(r["version"] for r in listed if r["serving"])
    other = next(r["version"] for r in listed if r["loaded"] and not r["serving"])
    return serving, other


def vectors_of(store: Any, version: str) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """A version's user and item vectors, unit length, from the registry (as the loader reads them)."""
    files = read_artifacts(store, registered(version))
    users, items = files["users"], files["items"]
    unit_users = users.vectors / np.linalg.norm(users.vectors, axis=1, keepdims=True)
    return (dict(zip(users.ids.to_pylist(), unit_users, strict=True)), np.array(items.ids.to_pylist()),
            items.vectors / np.linalg.norm(items.vectors, axis=1, keepdims=True))


def env_of(settings: Any, **more: str) -> dict[str, str]:
    return {**os.environ, "RECPIPE_HOME": str(settings.home), "RECPIPE_SERVE_IMPRESSIONS_EVERY": "0",
            "RECPIPE_VECTORS_URL": settings.vectors_url, **more}


# -- switch ---------------------------------------------------------------------------------------
def switch(settings: Any, versions: tuple[str, str], seconds: float) -> dict[str, Any]:
    serving, first = versions
    store, _ = open_artifacts(settings.artifacts_url)
    db = open_vectors(settings.vectors_url)
    known = {v: vectors_of(store, v) for v in versions}
    customers = sorted(set(known[first][0]) & set(known[serving][0]))[:500]
    expected = {}
    for v, (users, ids, items) in known.items():
        for c in customers:
            scores = np.round(items @ users[c], 5)
            expected[(v, c)] = list(ids[np.lexsort((ids, -scores))[:5]])
    server, url = serve.start(env_of(settings, RECPIPE_SERVE_EF_SEARCH="1000"))
    answers: list[tuple[float, str, bool]] = []  # (time, model version, its model's own top 5)
    failed: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        rng = np.random.default_rng(n)
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                c = int(rng.choice(customers))
                try:
                    r = http.get(f"/recommendations/{c}", params={"k": 5, "exclude_bought": "false",
                                                                  "in_stock": "false", "recent": ""})
                except httpx.HTTPError as exc:
                    failed.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failed.append(f"{r.status_code} {r.text[:200]}")
                    continue
                doc = r.json()
                answers.append((time.monotonic(), doc["model_version"],
                                [i["id"] for i in doc["items"]] == expected[(doc["model_version"], c)]))

    try:
        if not serve.wait_ready(url, 60):
            sys.exit(f"recpipe serve did not become ready: {server.stderr.read() if server.poll() else ''}")
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        steps = []
        for action, target in (("promote", first), ("rollback", serving)):
            began = time.monotonic()
            done = models.promote(db, store, target, keep=3) if action == "promote" else models.rollback(db)
            ended = time.monotonic()
            assert done.version == target, (done, target)
            steps.append((action, target, began, ended))
            time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(10)
    out = []
    for i, (action, target, began, ended) in enumerate(steps):
        until = steps[i + 1][2] if i + 1 < len(steps) else float("inf")
        first_new = min((t for t, v, _ in answers if v == target and t >= began), default=None)
        stale = sum(1 for t, v, _ in answers if first_new is not None and first_new + 0.5 < t < until and v != target)
        out.append({"action": action, "model": target, "command_s": round(ended - began, 3),
                    "to_first_answer_s": None if first_new is None else round(first_new - began, 3),
                    "after_commit_s": None if first_new is None else round(first_new - ended, 3),
                    "old_answers_after_half_a_second": stale})
    return {"clients": CLIENTS, "answers": len(answers), "failed": len(failed), "failures": failed[:5],
            "mixed": sum(1 for *_, own in answers if not own), "steps": out,
            "answers_per_s": round(len(answers) / (seconds * 3), 1)}


# -- experiment -----------------------------------------------------------------------------------
def experiment(settings: Any, work: Path, versions: tuple[str, str], events: int) -> dict[str, Any]:
    from recpipe.api.service import Service
    from recpipe.api.storefront import ServiceStorefront
    from recpipe.contracts.activity import EVENTS, IMPRESSIONS
    from recpipe.etl.online import read_online
    from recpipe.report.experiment import lines, sessions_to_exclude_zero
    from recpipe.streaming.closed_loop import ClosedLoop

    root = work / "experiment"
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    s = dataclasses.replace(settings, stream_url=str(root / "stream"), recommendations_url=str(root / "sink"),
                            lake_url=str(root / "lake"))
    name = f"bench-{int(time.time())}"
    with connect(open_vectors(s.vectors_url)) as conn:
        e = experiments.start(conn, name, [("A", "popularity"), ("B", versions[0])], [50])
    try:
        service = Service(s)
        simulation = ClosedLoop(shoppers(s, seed=13), ServiceStorefront(service), popular_share=0.0)
        try:
            produced = produce(open_stream(s.stream_url), simulation, rate=1e6, count=events)
        finally:
            service.close()
        enricher = enricher_from_settings(s)
        deliver(open_stream(s.stream_url), open_recommendations(s.recommendations_url),
                lambda ev: transform_with_reasons(ev, enricher), DeliveryOptions(until_idle=1.0))
        read_sink(open_recommendations(s.recommendations_url), open_lake(s.lake_url))
        lake = open_lake(s.lake_url)
        shown = read_online(lake, IMPRESSIONS)
        events_read = read_online(lake, EVENTS, ["recommendation_id", "kind", "product_code", "event_time"])
        got = [x.to_json() for x in lines(shown, events_read, e) if x.source == "service"]
        sessions = sessions_to_exclude_zero(shown, events_read, e, step=10)
        distinct = len({r for r in shown.column("session_id").to_pylist() if r})
    finally:
        with connect(open_vectors(s.vectors_url)) as conn:
            experiments.stop(conn, name, {})
    return {"events": produced.events, "sessions": distinct, "simulation": simulation.summary(), "lines": got,
            "sessions_to_exclude_zero": sessions}


# -- throughput -----------------------------------------------------------------------------------
def throughput(settings: Any, work: Path, versions: tuple[str, str], seconds: int, rounds: int) -> dict[str, Any]:
    db = open_vectors(settings.vectors_url)
    store, _ = open_artifacts(settings.artifacts_url)
    stored = sorted(vectors_of(store, versions[0])[0])
    customers = np.random.default_rng(3).choice(stored, min(500, len(stored)), replace=False)
    paths = [f"/recommendations/{c}?k=10" for c in customers]
    server, url = serve.start(env_of(settings))
    runs: dict[str, list[dict[str, Any]]] = {"one model": [], "experiment, two models": []}
    try:
        if not serve.wait_ready(url, 60):
            sys.exit("recpipe serve did not become ready")
        wrk(url, paths, CLIENTS, 2, work)
        for r in range(rounds):
            for arm in (("one model", "experiment, two models") if r % 2 == 0 else
                        ("experiment, two models", "one model")):
                name = f"tp-{int(time.time())}-{r}"
                if arm != "one model":
                    with connect(db) as conn:
                        experiments.start(conn, name, [("A", versions[0]), ("B", versions[1])], [50])
                time.sleep(1.5)  # serving looks every second
                wrk(url, paths, CLIENTS, 1, work)
                runs[arm].append(wrk(url, paths, CLIENTS, seconds, work))
                if arm != "one model":
                    with connect(db) as conn:
                        experiments.stop(conn, name, {})
                print(f"round {r}, {arm}: {runs[arm][-1]['rps']:,.0f} req/s", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    medians = {k: float(np.median([x["rps"] for x in v])) for k, v in runs.items()}
    return {"clients": CLIENTS, "runs": runs, "median_rps": medians,
            "ratio": round(medians["experiment, two models"] / medians["one model"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="switch,experiment,throughput")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-models-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = small_shop(work)
    versions = second_model(settings, work)
    print(f"serving {versions[0]}, also loaded {versions[1]}", flush=True)
    parts = set(args.parts.split(","))
    doc: dict[str, Any] = {"versions": versions}
    rows: list[tuple[Any, ...]] = []
    if "switch" in parts:
        doc["switch"] = got = switch(settings, versions, args.seconds)
        for step in got["steps"]:
            rows.append((f"{step['action']}: first answer from the model it serves", f"{step['to_first_answer_s']} s",
                         f"{step['after_commit_s']} s after the command"))
        rows.append(("answers during the switches (16 clients)", got["answers"],
                     f"failed {got['failed']}, mixed {got['mixed']}"))
    if "experiment" in parts:
        doc["experiment"] = got = experiment(settings, work, versions, args.events)
        for x in got["lines"]:
            diff = x["ctr_vs_control"]
            rows.append((f"experiment {x['variant']} ({x['target'][:25]})", x["impressions"],
                         f"CTR {x['ctr']['rate']:.3f} ({x['ctr']['low']:.3f}–{x['ctr']['high']:.3f})" +
                         (f", vs A {diff['difference']:+.3f} ({diff['low']:+.3f} to {diff['high']:+.3f})" if diff else "")))
        rows.append(("sessions until the difference excluded 0", got["sessions_to_exclude_zero"] or "-",
                     f"of {got['sessions']:,} sessions"))
    if "throughput" in parts:
        doc["throughput"] = got = throughput(settings, work, versions, args.seconds, args.rounds)
        rows.append(("throughput: experiment over two models ÷ one model", got["ratio"],
                     ", ".join(f"{k} {v:,.0f} req/s" for k, v in got["median_rps"].items())))
    report("models", "models side by side (2 cores)", ("figure", "value", "detail"), rows, doc)


if __name__ == "__main__":
    main()
