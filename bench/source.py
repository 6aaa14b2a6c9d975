"""Generating and loading ~1,000,000 ratings (with customers, products, orders) into SQLite
and MariaDB, against a plain row-by-row INSERT baseline in the same run.

    python bench/source.py [--customers 65000] [--products 2000] [--baseline-fraction 0.1]

The project's path is measured on the full shop. The row-by-row baseline (one execute per
row through the DB-API driver, one transaction, commit at the end) runs on the full shop for
SQLite, and on a shop a tenth the size for MariaDB, where at its speed the full size would
take minutes. Rates are per second either way.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from common import report, timed

from recpipe.adapters import open_source
from recpipe.contracts.source import TABLE_ORDER
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop


def arrow_rows(table: pa.Table, chunk_rows: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    """Row tuples for DB-API ``executemany``, a chunk at a time (dates as ISO strings)."""
    for batch in table.to_batches(max_chunksize=chunk_rows):
        columns = []
        for col in batch.columns:
            if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
                col = pc.cast(col, pa.string())
            columns.append(col.to_pylist())
        yield list(zip(*columns, strict=True))


def row_by_row(db: Any, shop: Any, placeholder: str, quote: str) -> None:
    """The baseline: a plain INSERT per row through the DB-API driver."""
    with db.build(replace=True) as loader:
        loader.create_tables(TABLE_ORDER)
        conn = loader.conn
        cur = conn.cursor()
        for name in TABLE_ORDER:
            data = shop.tables[name]
            cols = ", ".join(f"{quote}{c}{quote}" for c in data.column_names)
            sql = f"INSERT INTO {quote}{name}{quote} ({cols}) VALUES ({', '.join([placeholder] * data.num_columns)})"
            for rows in arrow_rows(data):
                for row in rows:
                    cur.execute(sql, row)


def sqlite_baseline(path: Path, shop: Any) -> None:
    """Row-by-row into SQLite with the standard library driver, one transaction."""
    import sqlite3

    from sqlalchemy.dialects import sqlite as dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from recpipe.contracts.source import table

    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    for name in TABLE_ORDER:
        conn.execute(str(CreateTable(table(name)).compile(dialect=dialect.dialect())))
        for index in table(name).indexes:
            conn.execute(str(CreateIndex(index).compile(dialect=dialect.dialect())))
    for name in TABLE_ORDER:
        data = shop.tables[name]
        sql = f'INSERT INTO "{name}" VALUES ({", ".join("?" * data.num_columns)})'
        for rows in arrow_rows(data):
            for row in rows:
                conn.execute(sql, row)
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=65_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--baseline-fraction", type=float, default=0.1)
    parser.add_argument("--skip-mariadb", action="store_true")
    args = parser.parse_args()

    spec = ShopSpec(customers=args.customers, products=args.products, seed=1)
    small = ShopSpec(customers=max(1, int(args.customers * args.baseline_fraction)),
                     products=args.products, seed=1)
    gen_s, shop = timed(lambda: generate_shop(spec))
    small_shop = generate_shop(small)
    ratings, rows = shop.counts()["ratings"], sum(shop.counts().values())
    b_ratings, b_rows = small_shop.counts()["ratings"], sum(small_shop.counts().values())
    results: dict[str, Any] = {"ratings": ratings, "rows": rows, "generate_seconds": gen_s,
                               "baseline_ratings": b_ratings, "baseline_rows": b_rows}
    table_rows = [("generate (numpy + Arrow)", f"{ratings:,}", gen_s, ratings / gen_s, rows / gen_s, "")]

    with tempfile.TemporaryDirectory() as tmp:
        db = open_source(f"sqlite:///{Path(tmp) / 'bench.db'}")
        load_s, _ = timed(lambda: write_shop(db, shop, replace=True))
        base_s, _ = timed(lambda: sqlite_baseline(Path(tmp) / "baseline.db", shop))
        ours = ratings / (gen_s + load_s)
        base = ratings / base_s
        results["sqlite"] = {"load_seconds": load_s, "ratings_per_s_end_to_end": ours,
                             "ratings_per_s_load": ratings / load_s, "rows_per_s_load": rows / load_s,
                             "baseline_seconds": base_s, "baseline_ratings_per_s": base,
                             "baseline_rows_per_s": rows / base_s, "speedup": ours / base}
        table_rows += [
            ("SQLite: recpipe (ADBC bulk ingest)", f"{ratings:,}", gen_s + load_s, ours, rows / (gen_s + load_s),
             f"{ours / base:.1f}x"),
            ("SQLite: row-by-row INSERT baseline", f"{ratings:,}", base_s, base, rows / base_s, "1.0x"),
        ]

    if not args.skip_mariadb:
        from tests.support import mariadb

        server = mariadb.start(buffer_pool="1G")
        try:
            db = open_source(server.create_database("bench"))
            load_s, _ = timed(lambda: write_shop(db, shop, replace=True))
            base_db = open_source(server.create_database("baseline"))
            base_s, _ = timed(lambda: row_by_row(base_db, small_shop, "%s", "`"))
        finally:
            server.stop()
        ours = ratings / (gen_s + load_s)
        base = b_ratings / base_s
        results["mariadb"] = {"load_seconds": load_s, "ratings_per_s_end_to_end": ours,
                              "ratings_per_s_load": ratings / load_s, "rows_per_s_load": rows / load_s,
                              "baseline_seconds": base_s, "baseline_ratings_per_s": base,
                              "baseline_rows_per_s": b_rows / base_s, "speedup": ours / base,
                              "server": "MariaDB 10.11, private instance, innodb_buffer_pool_size=1G, "
                                        "innodb_flush_log_at_trx_commit=2, innodb_log_file_size=256M"}
        table_rows += [
            ("MariaDB: recpipe (LOAD DATA LOCAL)", f"{ratings:,}", gen_s + load_s, ours, rows / (gen_s + load_s),
             f"{ours / base:.1f}x"),
            ("MariaDB: row-by-row INSERT baseline", f"{b_ratings:,}", base_s, base, b_rows / base_s, "1.0x"),
        ]

    report("source", "Generating and loading a synthetic shop (seconds include generation)",
           ("path", "ratings", "seconds", "ratings/s", "rows/s", "vs baseline"), table_rows, results)


if __name__ == "__main__":
    main()
