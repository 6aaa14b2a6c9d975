"""A soak: `recpipe serve` at 16 concurrent clients for 5 minutes, one minute at a time, with
the server's resident memory, open files and database connections sampled every 5 s. The
figures compare each minute with the first (after a 20 s warm-up): no growth is the goal.

    python bench/soak.py [--minutes 5] [--clients 16] [--products 20000] [--customers 10000] [--work DIR]

Set-up and load as bench/serve.py (a synthetic shop through recpipe itself; wrk with a Lua
script spreading GETs over 2,000 customers, with and without rules, and 2,000 products).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from common import report
from serve import build, wrk
from tests.support import serve as server_support

from recpipe.adapters import open_vectors


def sample(pid: int, conninfo: str, stop: threading.Event, out: list[dict[str, Any]], every: float = 5.0) -> None:
    proc = psutil.Process(pid)
    with psycopg.connect(conninfo, autocommit=True) as pg:
        while not stop.wait(every):
            backends = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                  "AND pid <> pg_backend_pid()").fetchone()[0]
            out.append({"t": time.monotonic(), "rss_mib": proc.memory_info().rss / 2**20, "fds": proc.num_fds(),
                        "db_connections": backends})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/soak.py needs wrk: apt-get install wrk")
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-soak-"))
    env = build(work, args.customers, args.products)
    db = open_vectors(env["RECPIPE_VECTORS_URL"])
    conninfo = db.conninfo()
    with psycopg.connect(conninfo) as c:
        items = [r[0] for r in c.execute("SELECT id FROM item_emb")]
        users = [r[0] for r in c.execute("SELECT id FROM user_emb")]
        lines = [r[0] for r in c.execute("SELECT DISTINCT product_line FROM catalog WHERE product_line IS NOT NULL")]
    rng = np.random.default_rng(0)
    paths = ([f"/recommendations/{u}?k=10" for u in rng.choice(users, 1000)]
             + [f"/recommendations/{u}?k=10&max_per_line=2&product_line={rng.choice(lines).replace(' ', '%20')}"
                for u in rng.choice(users, 500)]
             + [f"/recommendations/{10**8 + i}?country=France&k=5" for i in range(500)]  # features: the user tower
             + [f"/items_from_item?item_id={i}&limit=10" for i in rng.choice(items, 2000)])
    server, url = server_support.start({**os.environ, **env})
    samples: list[dict[str, Any]] = []
    minutes: list[dict[str, Any]] = []
    stop = threading.Event()
    try:
        if not server_support.wait_ready(url, 60):
            sys.exit("recpipe serve did not become ready")
        wrk(url, paths, args.clients, 20, work)  # warm-up: caches, pools, the allocator
        sampler = threading.Thread(target=sample, args=(server.pid, conninfo, stop, samples), daemon=True)
        sampler.start()
        for minute in range(1, args.minutes + 1):
            start = time.monotonic()
            r = wrk(url, paths, args.clients, 60, work)
            during = [s for s in samples if s["t"] >= start]
            row = {"minute": minute, "requests": round(r["rps"] * 60), **r,
                   "rss_mib": max(s["rss_mib"] for s in during), "fds": max(s["fds"] for s in during),
                   "db_connections": max(s["db_connections"] for s in during)}
            minutes.append(row)
            print(f"minute {minute}: {row['requests']:,} requests, {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, non-2xx {r['non_2xx']}, RSS {row['rss_mib']:.0f} MiB, "
                  f"{row['fds']} fds, {row['db_connections']} db connections", flush=True)
    finally:
        stop.set()
        server.terminate()
        server.wait(10)
        db.stop()
    first, last = minutes[0], minutes[-1]
    rows = [(m["minute"], m["requests"], m["rps"], m["p50_ms"], m["p99_ms"], m["non_2xx"], m["rss_mib"],
             m["rss_mib"] / first["rss_mib"], m["fds"], m["db_connections"]) for m in minutes]
    report("soak", f"recpipe serve at {args.clients} clients for {args.minutes} × 60 s ({len(items):,} items, "
                   f"{len(users):,} users; wrk on the same 2 cores)",
           ("minute", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx", "RSS MiB", "RSS × minute 1", "fds",
            "db conns"), rows,
           {"clients": args.clients, "minutes": minutes, "samples": samples,
            "requests": sum(m["requests"] for m in minutes),
            "rss_growth": last["rss_mib"] / first["rss_mib"], "p99_ratio": last["p99_ms"] / first["p99_ms"],
            "fds_growth": last["fds"] - first["fds"],
            "db_connections_growth": last["db_connections"] - first["db_connections"]})


if __name__ == "__main__":
    main()
