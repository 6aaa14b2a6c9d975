"""The DuckDB engine: the default, in-process, bounded by a memory limit (spills to disk)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from recpipe.adapters.base import SourceDatabase
from recpipe.adapters.staged import WrittenFile
from recpipe.contracts.dataset import COMPACT_ROWS, PARTITION_KEY, SOURCE_COLUMNS
from recpipe.errors import InputError
from recpipe.etl import transform
from recpipe.etl.partition_writer import write_compact, write_in_processes, write_partitions
from recpipe.progress import SILENT, Progress
from recpipe.source.read import source_schema, stream, tables_read

PARALLEL_FROM_ROWS = 200_000  # below this, starting processes costs more than it saves


@dataclass
class EngineResult:
    source_rows: dict[str, int]
    rows: int
    quarantined: dict[str, int] = field(default_factory=dict)
    files: list[WrittenFile] | None = None  # None: publish reads the files to check them


def run(db: SourceDatabase, out: Path, quarantine_out: Path, *, memory_limit: str = "1GB",
        threads: int | None = None, processes: int | None = None, batch_rows: int = 100_000,
        layout: str = "partitioned", progress: Progress = SILENT) -> EngineResult:
    """Extract, classify and write snappy Parquet in ``layout`` (``contracts.dataset.LAYOUTS``) into ``out``."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="recpipe-duckdb-") as tmp:
        database = Path(tmp) / "etl.duckdb"
        con = duckdb.connect(str(database))
        try:
            def sql(statement: str) -> list[tuple]:
                return con.execute(statement).fetchall()  # DuckDB 2 wants every result consumed

            sql(f"SET memory_limit = '{memory_limit}'")
            sql(f"SET temp_directory = '{Path(tmp) / 'spill'}'")
            sql("SET enable_progress_bar = false")
            if threads:
                sql(f"SET threads = {int(threads)}")
            source_rows = {}
            present = tables_read(db)
            for table in SOURCE_COLUMNS:
                if table not in present:  # no orders: an empty table, so the dataset has no time order
                    reader = source_schema(table).empty_table().to_reader()
                    con.register(f"{table}_stream", reader)
                    sql(f"CREATE TABLE {table} AS SELECT * FROM {table}_stream")
                    con.unregister(f"{table}_stream")
                    continue
                reader = stream(db, table, batch_rows=batch_rows, progress=progress)
                con.register(f"{table}_stream", reader)
                sql(f"CREATE TABLE {table} AS SELECT * FROM {table}_stream")
                con.unregister(f"{table}_stream")
                source_rows[table] = sql(f"SELECT COUNT(*) FROM {table}")[0][0]
            for table, query in transform.DUPLICATE_KEYS.items():
                dupes = [r[0] for r in sql(query)]
                if dupes:
                    raise InputError(f"source table {table} repeats the key(s) {dupes}: a rating would "
                                     "join to two feature rows", hint=f"make the {table} key unique")
            sql(f"CREATE TABLE classified AS {transform.CLASSIFY}")
            quarantined = dict(sql(transform.REASON_COUNTS))
            rows = sql("SELECT COUNT(*) FROM classified WHERE reason IS NULL")[0][0]
            # Sorted once here, within the memory limit; writers then scan it in that order.
            sql(f"CREATE TABLE training AS {transform.TRAINING} ORDER BY customerNumber, productCode")
            sql(
                f"COPY ({transform.QUARANTINED} ORDER BY reason, customerNumber, productCode) "
                f"TO '{quarantine_out / 'part-0.parquet'}' (FORMAT parquet, COMPRESSION snappy)")
        finally:
            con.close()
        compact = COMPACT_ROWS if layout == "compact" else None
        if rows >= PARALLEL_FROM_ROWS and (processes or os.cpu_count() or 1) > 1:
            share = f"SELECT * FROM training WHERE {PARTITION_KEY} % {{n}} = {{i}}"
            written = write_in_processes(database, share, out, PARTITION_KEY, processes, compact)
        else:
            con = duckdb.connect(str(database), read_only=True)
            try:
                reader = con.sql("SELECT * FROM training").to_arrow_reader(100_000)
                written = (write_compact(iter(reader), out, PARTITION_KEY, compact) if compact else
                           write_partitions(iter(reader), out, PARTITION_KEY))
            finally:
                con.close()
    return EngineResult(source_rows=source_rows, rows=rows, quarantined=quarantined, files=written)
