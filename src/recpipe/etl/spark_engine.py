"""The Spark engine: the code of the AWS Glue job (Glue 5.0 = Spark 3.5), runnable locally.

It reads the source over JDBC, runs the same SQL as the DuckDB engine (``transform``) and
writes snappy Parquet partitioned by customerNumber. ``recpipe.jobs.glue_etl`` is the Glue
entry script; ``recpipe etl run --engine spark`` runs this module on a local Spark.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts.dataset import COMPACT_ROWS, PARTITION_KEY, SOURCE_COLUMNS
from recpipe.errors import InputError, MissingDependencyError
from recpipe.etl import transform
from recpipe.etl.duckdb_engine import EngineResult
from recpipe.progress import SILENT, Progress
from recpipe.source.read import source_query, source_schema, tables_read

# JDBC drivers from Debian's packages (libmariadb-java, libxerial-sqlite-jdbc-java,
# libpostgresql-jdbc-java); RECPIPE_SPARK_JARS (comma-separated) replaces them.
DEBIAN_JARS = ("/usr/share/java/mariadb-java-client.jar", "/usr/share/java/sqlite-jdbc.jar",
               "/usr/share/java/postgresql.jar")
_SPARK_TYPES = {"int64": "LONG", "double": "DOUBLE", "string": "STRING"}


def local_session(app_name: str = "recpipe-etl", *, master: str = "local[*]", driver_memory: str = "2g",
                  jars: str | None = None) -> Any:
    """A local SparkSession bound to 127.0.0.1 with the JDBC drivers on its class path
    (``jars``: comma-separated; default Debian's drivers where installed). The CLI passes the
    RECPIPE_SPARK_* settings."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependencyError("pyspark", "spark", "The spark ETL engine") from exc
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (the online ETL) run this Python
    jars = jars or ",".join(j for j in DEBIAN_JARS if Path(j).exists())
    return (SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.jars", jars)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 2)))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
            .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
            .config("spark.sql.parquet.compression.codec", "snappy")
            .getOrCreate())


def _ddl(table: str) -> str:
    return ", ".join(f"{f.name} {_SPARK_TYPES[str(f.type)]}" for f in source_schema(table))


def read_source(spark: Any, db: SourceDatabase, table: str, *, fetch_rows: int = 10_000) -> Any:
    """``table``'s contract columns over JDBC, typed as the DuckDB engine reads them."""
    options = db.jdbc()
    custom = _ddl(table)
    return (spark.read.format("jdbc")
            .option("url", options["url"]).option("driver", options["driver"])
            .options(**{k: v for k, v in options.items() if k in ("user", "password")})
            .option("dbtable", f"({source_query(db, table)}) recpipe_{table}")
            .option("customSchema", custom)
            .option("fetchsize", str(fetch_rows))
            .load())


def run(db: SourceDatabase, out: Path | str, quarantine_out: Path | str, *, spark: Any = None,
        layout: str = "partitioned", progress: Progress = SILENT) -> EngineResult:
    """Extract over JDBC, classify with ``transform.CLASSIFY`` and write the two outputs."""
    spark = spark or local_session()
    try:
        from py4j.protocol import Py4JJavaError
        from pyspark import StorageLevel
        from pyspark.errors import PySparkException
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("pyspark", "spark", "The spark ETL engine") from exc
    try:
        source_rows = {}
        present = tables_read(db)
        for table in SOURCE_COLUMNS:
            if table not in present:  # no orders: an empty table, so the dataset has no time order
                spark.createDataFrame([], _ddl(table)).createOrReplaceTempView(table)
                continue
            frame = read_source(spark, db, table)
            if table in ("customers", "products"):  # small lookup tables: read once, keep in memory
                frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            frame.createOrReplaceTempView(table)
        for table, query in transform.DUPLICATE_KEYS.items():
            dupes = [r[0] for r in spark.sql(query).collect()]
            if dupes:
                raise InputError(f"source table {table} repeats the key(s) {dupes}: a rating would "
                                 "join to two feature rows", hint=f"make the {table} key unique")
        classified = spark.sql(transform.CLASSIFY).persist(StorageLevel.DISK_ONLY)
        classified.createOrReplaceTempView("classified")
        counts = {(r["reason"] or ""): r["n"] for r in spark.sql(
            "SELECT reason, COUNT(*) AS n FROM classified GROUP BY reason").collect()}
        rows = counts.pop("", 0)
        source_rows = {t: spark.table(t).count() for t in ("customers", "products")}
        source_rows["ratings"] = rows + sum(counts.values())
        source_rows |= {t: spark.table(t).count() for t in present if t not in source_rows}
        for table, n in source_rows.items():
            progress.advance(table, n)
        training = spark.sql(transform.TRAINING)
        if layout == "compact":  # ranges of customers, about COMPACT_ROWS rows a file
            (training.repartitionByRange(max(1, -(-rows // COMPACT_ROWS)), PARTITION_KEY)
             .sortWithinPartitions(PARTITION_KEY, "productCode")
             .write.mode("overwrite").parquet(str(out)))
        else:
            (training.repartition(PARTITION_KEY)
             .sortWithinPartitions(PARTITION_KEY, "productCode")
             .write.mode("overwrite").partitionBy(PARTITION_KEY).parquet(str(out)))
        (spark.sql(transform.QUARANTINED).coalesce(1)
         .sortWithinPartitions("reason", "customerNumber", "productCode")
         .write.mode("overwrite").parquet(str(quarantine_out)))
        classified.unpersist()
    except (Py4JJavaError, PySparkException) as exc:
        said = str(exc).strip().splitlines()[0][:300]
        raise InputError(f"the Spark ETL failed reading {db.url}: {said}",
                         hint="see the Spark log above; is the JDBC driver on spark.jars?") from exc
    return EngineResult(source_rows=source_rows, rows=rows, quarantined=counts)


def _candidate_rows(objects: Any) -> Any:
    """Spark's workers: (key, data) rows of sink objects as candidate rows (``etl.lines``)."""
    from recpipe.etl.lines import rows_of_object

    for key, data in objects:
        yield from rows_of_object(key, bytes(data))


class SparkKeeper:
    """The online datasets on Spark (``etl.online.Keeper``): the objects are parsed by Spark's
    Python workers with the DuckDB engine's own function, and kept by the same SQL. The batch's
    objects pass through the driver (a batch is bounded: ``etl.online.BATCH_OBJECTS``)."""

    def __init__(self, spark: Any, objects: list[tuple[str, bytes]]) -> None:
        from pyspark import StorageLevel

        from recpipe.etl.lines import CANDIDATE_TYPES

        self.spark = spark = spark or local_session()
        frame = spark.createDataFrame([(k, bytearray(d)) for k, d in objects] or [], "key string, data binary")
        ddl = ", ".join(f"{name} {_SPARK_TYPES_OF[t]}" for name, t in CANDIDATE_TYPES.items())
        parts = max(1, min(len(objects), 4 * (os.cpu_count() or 2)))
        # RDD rows, not mapInArrow: that wants pandas, which recpipe does not otherwise need
        rows = frame.repartition(parts).rdd.mapPartitions(_candidate_rows)
        self.candidates = spark.createDataFrame(rows, ddl).persist(StorageLevel.MEMORY_AND_DISK)
        self.candidates.createOrReplaceTempView("candidates")

    def days(self) -> set[str]:
        from recpipe.etl.online import DAYS

        return {r["day"] for r in self.spark.sql(DAYS).collect()}

    def keep(self, kept_events: Any, kept_impressions: Any) -> Any:
        import pyarrow as pa

        from recpipe.contracts.activity import arrow_type
        from recpipe.etl.online import BAD_LINES, KEEP_EVENTS, KEEP_IMPRESSIONS, LINES, Tables

        for name, table in (("kept_events", kept_events), ("kept_impressions", kept_impressions)):
            ddl = ", ".join(f"{c} string" for c in table.column_names)
            rows = [tuple(r.values()) for r in table.to_pylist()]
            self.spark.createDataFrame(rows, ddl).createOrReplaceTempView(name)
        arrow = {spark_type: arrow_type(name) for name, spark_type in _SPARK_TYPES_OF.items()}
        out = []
        for query in (KEEP_EVENTS, KEEP_IMPRESSIONS, BAD_LINES, LINES):
            frame = self.spark.sql(query)
            batches = frame._collect_as_arrow()  # what toPandas uses; Spark 3.5 has no public toArrow
            out.append(pa.Table.from_batches(batches) if batches else
                       pa.schema([pa.field(f.name, arrow[f.dataType.simpleString()])
                                  for f in frame.schema]).empty_table())
        return Tables(*out)

    def close(self) -> None:
        self.candidates.unpersist()


_SPARK_TYPES_OF = {"string": "string", "int32": "int", "int64": "bigint", "timestamp_us_utc": "timestamp",
                   "list_string": "array<string>"}  # contracts.activity's type names as Spark's
