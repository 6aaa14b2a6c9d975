"""The inference service under load: latency p50/p99 and requests/s for /items_from_item and
/recommendations/{id} at 1, 4 and 16 concurrent clients, with /health (the framework's floor)
in the same run.

    python bench/serve.py [--products 100000] [--customers 20000] [--seconds 10] [--work DIR]

Set-up through recpipe itself: a synthetic shop with 120,000 products (SQLite; ~100,000 of them
bought, hence embedded), the DuckDB
ETL, a content model (`train`), `vectors load` with the catalog into the embedded PostgreSQL,
then `recpipe serve` in its own process. Load from wrk (Debian's package; a Lua script spreads
requests over 2,000 random products / customers), on the same 2 cores as the server.

A second server with more database threads (`--compare-threads`, 8 = the old default) is
measured at 16 clients in the same run: it shows why the default is one thread per core.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import report
from tests.support import serve

from recpipe.adapters import open_artifacts, open_lake, open_source, open_vectors
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.vectors.pipeline import run as load_vectors

CONCURRENCY = (1, 4, 16)


def build(work: Path, customers: int, products: int) -> dict[str, str]:
    env = {"RECPIPE_HOME": str(work / "home"), "RECPIPE_SOURCE_URL": f"sqlite:///{work / 'source.db'}",
           "RECPIPE_LAKE_URL": str(work / "lake"), "RECPIPE_VECTORS_URL": f"pgserver://{work / 'pg'}"}
    if (work / "ready").exists():
        return env
    t0 = time.perf_counter()
    shop = generate_shop(ShopSpec(customers=customers, products=products, seed=5))
    db = open_source(env["RECPIPE_SOURCE_URL"])
    write_shop(db, shop, replace=True)
    lake = open_lake(env["RECPIPE_LAKE_URL"])
    run_etl(db, lake, generator=shop.params)
    store, name = open_artifacts(str(work / "lake" / "ml-artifacts"))
    train(lake, store, name, TrainOptions(fit=FitOptions(max_epochs=5, patience=2)))
    loaded = load_vectors(open_vectors(env["RECPIPE_VECTORS_URL"]), store, name, source=db)
    print(f"set-up in {time.perf_counter() - t0:.0f} s: {loaded.items:,} items, {loaded.users:,} users, "
          f"{loaded.catalog:,} catalog products", flush=True)
    (work / "ready").write_text("")
    return env


def wrk(url: str, paths: list[str], clients: int, seconds: int, work: Path) -> dict[str, Any]:
    script = work / "paths.lua"
    script.write_text("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
                      "request = function() return wrk.format(nil, paths[math.random(#paths)]) end\n")
    # one wrk thread: on 2 shared cores a second one mostly measures its own descheduling
    out = subprocess.run(["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1)) for p in ("50", "99")}  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"], "non_2xx": int(errors.group(1)) if errors else 0}


def measure(env: dict[str, str], workers: int, args: tuple[str, ...], endpoints: dict[str, list[str]],
            concurrency: tuple[int, ...], seconds: int, work: Path) -> dict[str, dict[int, Any]]:
    """Start `recpipe serve` with ``args``, run wrk on every endpoint × concurrency, stop it."""
    server, url = serve.start(env, workers=workers, args=args)
    results: dict[str, dict[int, Any]] = {}
    try:
        if not serve.wait_ready(url):
            sys.exit(f"recpipe serve did not become ready: {server.stderr.read() if server.poll() is not None else ''}")
        for name, paths in endpoints.items():
            for clients in concurrency:
                wrk(url, paths, clients, 2, work)  # warm-up
                r = wrk(url, paths, clients, seconds, work)
                results.setdefault(name, {})[clients] = r
                print(f"{' '.join(args) or 'defaults'}: {name} × {clients}: {r['rps']:,.0f} req/s, "
                      f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, non-2xx {r['non_2xx']}", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    return results


def paired(env: dict[str, str], workers: int, args: tuple[str, ...], paths: list[str], seconds: int, work: Path,
           rounds: int = 3) -> dict[int, dict[str, Any]]:
    """The same server with its impression log on (into ``work/logged``) and off, both running,
    measured in turns (the order alternating each round) at every concurrency: the median
    requests/s of each, and their ratio. Turns, not one server after the other: on a shared
    machine the rate drifts more between minutes than logging costs."""
    servers = {"logged": serve.start({**env, "RECPIPE_RECOMMENDATIONS_URL": str(work / "logged")}, workers=workers,
                                     args=args),
               "unlogged": serve.start({**env, "RECPIPE_SERVE_IMPRESSIONS_EVERY": "0"}, workers=workers, args=args)}
    out: dict[int, dict[str, Any]] = {}
    try:
        for name, (server, url) in servers.items():
            if not serve.wait_ready(url, 60):
                sys.exit(f"recpipe serve ({name}) did not become ready: "
                         f"{server.stderr.read() if server.poll() is not None else ''}")
            wrk(url, paths, 4, 2, work)  # warm-up
        for clients in CONCURRENCY:
            runs: dict[str, list[dict[str, Any]]] = {"logged": [], "unlogged": []}
            for r in range(rounds):
                for name in (("logged", "unlogged") if r % 2 == 0 else ("unlogged", "logged")):
                    runs[name].append(wrk(servers[name][1], paths, clients, seconds, work))
            ratio = float(np.median([x["rps"] for x in runs["logged"]]) / np.median([x["rps"] for x in runs["unlogged"]]))
            out[clients] = {**runs, "ratio": round(ratio, 3)}
            print(f"impression log on/off × {clients}: {ratio:.3f}", flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(10)
    return out


def log_cost(work: Path, n: int = 100_000) -> dict[str, float]:
    """What the impression log costs per answer, measured alone: the request's append, and the
    writer's share (serialising, writing the object), in microseconds."""
    import datetime as dt

    from recpipe.adapters import open_recommendations
    from recpipe.api.impressions import ImpressionLog

    log = ImpressionLog(open_recommendations(str(work / "log-cost")), every=3600)
    items = [{"id": f"S{i}_{i}", "score": 0.5, "product_line": "Classic Cars"} for i in range(10)]
    t0 = time.perf_counter()
    for _ in range(n):
        log.log(dt.datetime.now(dt.UTC), "0b1f7c9e-2d4a-4e0b-9c1d-5f6a7b8c9d0e", "model", "stored", items, 103, None)
    t1 = time.perf_counter()
    log.close()
    t2 = time.perf_counter()
    return {"append_us": round((t1 - t0) / n * 1e6, 2), "write_us": round((t2 - t1) / n * 1e6, 2)}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=120_000)
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1,
                        help="recpipe serve --workers (its threads default to cores ÷ workers)")
    parser.add_argument("--threads", type=int, default=None, help="recpipe serve --threads (default: its own)")
    parser.add_argument("--compare-threads", type=int, default=8, help="also measure 16 clients with this many "
                                                                         "threads (0: skip)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of each server in the impression log comparison")
    parser.add_argument("--compare-impressions", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure /recommendations with the impression log off (issue 23's cost)")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--name", default="serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/serve.py needs wrk: apt-get install wrk")
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-serve-"))
    env = build(work, args.customers, args.products)
    db = open_vectors(env["RECPIPE_VECTORS_URL"])
    import psycopg

    with psycopg.connect(db.conninfo()) as c:
        items = [r[0] for r in c.execute("SELECT id FROM item_emb")]
        users = [r[0] for r in c.execute("SELECT id FROM user_emb")]
    rng = np.random.default_rng(0)
    endpoints = {
        "/health": ["/health"],
        "/items_from_item": [f"/items_from_item?item_id={i}&limit=10" for i in rng.choice(items, 2000)],
        "/recommendations/{id}": [f"/recommendations/{u}?k=10" for u in rng.choice(users, 2000)],
        # issue 22: the same answer moved by a 10-product history (strategy "session")
        "/recommendations/{id}?recent=10": [f"/recommendations/{u}?k=10&recent=" + ",".join(rng.choice(items, 10))
                                            for u in rng.choice(users, 2000)],
    }
    threads = ("--threads", str(args.threads)) if args.threads else ()
    compared: dict[str, dict[int, Any]] = {}
    unlogged: dict[str, dict[int, Any]] = {}
    try:
        results = measure({**os.environ, **env}, args.workers, threads, endpoints, CONCURRENCY, args.seconds, work)
        if args.compare_impressions:  # what the impression log costs: two servers, measured in turns
            unlogged = paired({**os.environ, **env}, args.workers, threads, endpoints["/recommendations/{id}"],
                              args.seconds, work, args.rounds)
        if args.compare_threads:
            compared = measure({**os.environ, **env}, args.workers, ("--threads", str(args.compare_threads)),
                               {k: v for k, v in endpoints.items() if k != "/health"}, (16,), args.seconds, work)
    finally:
        db.stop()
    rows = []
    for name, by_c in results.items():
        for clients, r in by_c.items():
            floor = results["/health"][clients]["rps"]
            rows.append((name, clients, r["rps"], r["p50_ms"], r["p99_ms"], r["rps"] / floor, r["non_2xx"]))
    for name, by_c in compared.items():
        for clients, r in by_c.items():
            floor = results["/health"][clients]["rps"]
            rows.append((f"{name} ({args.compare_threads} threads)", clients, r["rps"], r["p50_ms"], r["p99_ms"],
                         r["rps"] / floor, r["non_2xx"]))
    for clients, pair in unlogged.items():
        for side in ("logged", "unlogged"):
            runs = pair[side]
            floor = results["/health"][clients]["rps"]
            median = float(np.median([r["rps"] for r in runs]))
            rows.append((f"/recommendations/{{id}}, impression log {'on' if side == 'logged' else 'off'} "
                         f"(median of {len(runs)})", clients, median, float(np.median([r["p50_ms"] for r in runs])),
                         float(np.median([r["p99_ms"] for r in runs])), median / floor,
                         sum(r["non_2xx"] for r in runs)))
    logged = {c: pair["ratio"] for c, pair in unlogged.items()}
    served = sum(len(p.read_bytes().splitlines()) for p in (work / "logged" / "served").rglob("*.ndjson"))
    with_history = results["/recommendations/{id}?recent=10"]
    ratios = {c: round(with_history[c]["rps"] / results["/recommendations/{id}"][c]["rps"], 3) for c in with_history}
    report(args.name, f"recpipe serve ({args.workers} uvicorn process(es)) with {len(items):,} items, {len(users):,} users; wrk on "
                      f"the same 2 cores, {args.seconds} s per cell",
           ("endpoint", "clients", "req/s", "p50 ms", "p99 ms", "× /health", "non-2xx"), rows,
           {"items": len(items), "users": len(users), "seconds": args.seconds, "workers": args.workers,
            "threads": args.threads or "default (one per core)", "results": results,
            "compare_threads": args.compare_threads, "compared": compared,
            "history_vs_stored_rps": ratios, "unlogged": unlogged,
            "impression_log_vs_none_rps": logged, "impression_log_lines": served,
            "impression_log_cost": log_cost(work) if args.compare_impressions else None})


if __name__ == "__main__":
    main()
