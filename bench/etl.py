"""ETL throughput on a synthetic source of ~10,000,000 ratings, from MariaDB and from SQLite,
for the duckdb and the spark engine, against the raw read ceiling measured in the same run.

    python bench/etl.py [--customers 633000] [--products 5000] [--engines duckdb,spark]

The contract partitions by customer, so the customer count sets the number of files; the
defaults give ~16 ratings per customer (633,000 partitions). Fewer, heavier customers, e.g.
``--customers 100000 --orders-per-customer 10 --lines-per-order 12`` (~100 ratings each),
keep 10,000,000 ratings with 100,000 partitions.

Raw read ceiling: the three source tables streamed into Arrow by the reader the engines use
(ConnectorX for MariaDB, sqlite3 for SQLite), no transform. Each ETL runs as `recpipe etl run`
in its own process; peak memory is the largest resident size of its whole process tree
(workers and the JVM included), sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report, run_measured, timed

from recpipe.adapters import open_source
from recpipe.contracts.dataset import SOURCE_COLUMNS
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.source.read import stream


def raw_read(url: str) -> tuple[float, dict[str, int]]:
    db = open_source(url)
    counts = {}
    start = time.perf_counter()
    for table in SOURCE_COLUMNS:
        counts[table] = sum(b.num_rows for b in stream(db, table))
    return time.perf_counter() - start, counts


def etl_process(source_url: str, lake: Path, engine: str) -> tuple[float, int, dict[str, Any]]:
    """Run `recpipe etl run` in a child process; return (seconds, peak tree RSS bytes, manifest)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    env.update({"RECPIPE_SOURCE_URL": source_url, "RECPIPE_LAKE_URL": str(lake),
                "RECPIPE_HOME": str(lake.parent / "home"), "SPARK_LOCAL_IP": "127.0.0.1"})
    seconds, peak, out = run_measured([sys.executable, "-m", "recpipe", "etl", "run", "--engine", engine, "--json"],
                                      env)
    return seconds, peak, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=633_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--orders-per-customer", type=float, default=3.0)
    parser.add_argument("--lines-per-order", type=float, default=6.0)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--sources", default="mariadb,sqlite")
    parser.add_argument("--name", default="etl", help="results go to bench/results/<name>.json")
    args = parser.parse_args()
    engines = args.engines.split(",")
    results: dict[str, Any] = {"engines": engines}
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="recpipe-bench-etl-") as tmp:
        work = Path(tmp)
        gen_s, shop = timed(lambda: generate_shop(ShopSpec(
            customers=args.customers, products=args.products, seed=5,
            orders_per_customer=args.orders_per_customer, lines_per_order=args.lines_per_order)))
        ratings = shop.counts()["ratings"]
        results.update({"ratings": ratings, "customers": args.customers, "generate_seconds": gen_s})
        sources: dict[str, str] = {}
        server = None
        if "sqlite" in args.sources:
            sources["sqlite"] = f"sqlite:///{work / 'src.db'}"
            write_shop(open_source(sources["sqlite"]), shop)
        if "mariadb" in args.sources:
            from tests.support import mariadb

            server = mariadb.start(buffer_pool="2G")
            sources["mariadb"] = server.create_database("bench")
            write_shop(open_source(sources["mariadb"]), shop)
        del shop
        try:
            for name, url in sources.items():
                raw_s, counts = raw_read(url)
                entry: dict[str, Any] = {"raw_read_seconds": raw_s, "raw_read_ratings_per_s": ratings / raw_s,
                                         "source_rows": counts}
                rows_out.append((f"{name}: raw read (ceiling)", raw_s, ratings / raw_s, "", "1.00"))
                for engine in engines:
                    lake = work / f"lake-{name}-{engine}"
                    seconds, peak, manifest = etl_process(url, lake, engine)
                    entry[engine] = {"seconds": seconds, "ratings_per_s": ratings / seconds,
                                     "peak_rss_bytes": peak, "vs_raw_read": raw_s / seconds,
                                     "partitions": manifest["partitions"], "rows": manifest["rows"],
                                     "phases": manifest["seconds"]}
                    rows_out.append((f"{name}: {engine} engine", seconds, ratings / seconds,
                                     f"{peak / 2**30:.2f}", f"{raw_s / seconds:.2f}"))
                    subprocess.run(["rm", "-rf", str(lake)], check=False)
                if "duckdb" in entry and "spark" in entry:
                    entry["duckdb_vs_spark"] = entry["spark"]["seconds"] / entry["duckdb"]["seconds"]
                results[name] = entry
        finally:
            if server is not None:
                server.stop()
    report(args.name, f"ETL of {ratings:,} ratings ({args.customers:,} customer partitions)",
           ("path", "seconds", "ratings/s", "peak GiB", "x raw read"), rows_out, results)
    for name in sources:
        if "duckdb_vs_spark" in results[name]:
            print(f"{name}: duckdb engine is {results[name]['duckdb_vs_spark']:.1f}x faster than spark")


if __name__ == "__main__":
    main()
