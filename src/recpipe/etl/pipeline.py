"""The ETL stage's entry point (``run``): check, stage, transform, validate, publish with a manifest.

Nothing is visible in the lake until the staged dataset has passed every check; then the
quarantine and the training dataset are each swapped in whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import uuid
from pathlib import Path
from typing import Any

from recpipe import __version__
from recpipe.adapters.base import Lake, SourceDatabase
from recpipe.adapters.staged import Staged, WrittenFile
from recpipe.contracts.dataset import (
    DATASET,
    ENGINES,
    FILE_COLUMNS,
    LAYOUTS,
    MANIFEST,
    PARTITION_KEY,
    QUARANTINE,
    QUARANTINE_SCHEMA,
    REASONS,
    TRAINING_SCHEMA,
    DatasetManifest,
    schema_document,
)
from recpipe.errors import InputError, InternalError
from recpipe.progress import SILENT, Progress
from recpipe.source.read import check_source, count_rows


def run(db: SourceDatabase, lake: Lake, *, engine: str = "duckdb", max_quarantine_fraction: float = 0.05,
        generator: dict[str, Any] | None = None, spark: Any = None, remote_staging: bool = False,
        layout: str = "partitioned", progress: Progress = SILENT) -> DatasetManifest:
    """Build and publish ``<lake>/ratings_ml_training``; return its manifest.

    ``remote_staging`` lets a Spark cluster write its output to the lake's own storage (S3)
    before it is checked and published, as the Glue job does.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown ETL engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
    if not 0 <= max_quarantine_fraction <= 1:
        raise InputError(f"--max-quarantine-fraction must be within 0 and 1 (got {max_quarantine_fraction})")
    if layout not in LAYOUTS:
        raise InputError(f"unknown dataset layout {layout!r}", hint=f"use one of: {', '.join(LAYOUTS)}")
    if remote_staging and engine != "spark":
        raise InputError("only the spark engine can stage remotely", hint="drop remote_staging")
    started = time.perf_counter()
    lake.check_writable()
    progress.status(f"checking the source {db.url}")
    check_source(db)
    if progress is not SILENT:
        for table, rows in count_rows(db).items():
            progress.start(table, rows)
    with lake.stage(DATASET, remote=remote_staging) as out, \
            lake.stage(QUARANTINE, remote=remote_staging) as q_out:
        progress.status(f"transforming with {engine} and writing partitions")
        if engine == "duckdb":
            from recpipe.etl import duckdb_engine

            result = duckdb_engine.run(db, Path(out.location), Path(q_out.location), layout=layout, progress=progress)
        else:
            from recpipe.etl import spark_engine

            result = spark_engine.run(db, out.location, q_out.location, spark=spark, layout=layout, progress=progress)
        transformed = time.perf_counter()
        progress.status("checking the staged dataset")
        ratings = result.source_rows["ratings"]
        quarantined = sum(result.quarantined.values())
        if result.rows + quarantined != ratings:
            raise InternalError(f"the ETL accounted for {result.rows + quarantined:,} of {ratings:,} ratings",
                             hint="this is a bug in recpipe: please report it with the manifest; nothing was published")
        fraction = quarantined / ratings if ratings else 0.0
        if fraction > max_quarantine_fraction:
            detail = ", ".join(f"{k}={v:,}" for k, v in sorted(result.quarantined.items()))
            raise InputError(f"{quarantined:,} of {ratings:,} ratings ({fraction:.1%}) break the contract "
                             f"({detail}), more than --max-quarantine-fraction {max_quarantine_fraction}",
                             hint="fix the source or raise the threshold; the published dataset is unchanged")
        files = _check_files(out, result.rows, result.files, layout)
        doc = {
            "dataset": DATASET,
            "version": dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8],
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "recpipe_version": __version__,
            "engine": engine,
            "source": db.url,
            "source_rows": result.source_rows,
            "rows": result.rows,
            "partition_key": PARTITION_KEY,
            "partitions": files["partitions"],
            "files": files["files"],
            "bytes": files["bytes"],
            "fingerprint": files["fingerprint"],
            "schema": schema_document(TRAINING_SCHEMA),
            "format": {"type": "parquet", "compression": "snappy", "layout": layout,
                       "partitioning": "hive" if layout == "partitioned" else f"none: files of whole customers, {PARTITION_KEY} a column"},
            "location": lake.location(DATASET),
            "quarantine": {
                "rows": quarantined,
                "fraction": round(fraction, 6),
                "by_reason": dict(sorted(result.quarantined.items())),
                "reasons": REASONS,
                "location": lake.location(QUARANTINE),
                "schema": schema_document(QUARANTINE_SCHEMA),
            },
            "generator": _generator_summary(generator),
            "seconds": {"transform": round(transformed - started, 3)},
        }
        progress.status(f"publishing to {lake.url}")
        doc["seconds"]["until_publish"] = round(time.perf_counter() - started, 3)
        manifest = DatasetManifest.model_validate(doc)  # a mismatch here is a bug: it fails loudly
        out.write_text(MANIFEST, manifest.to_text())
        lake.publish(QUARANTINE, q_out)
        lake.publish(DATASET, out)
    return manifest


def _check_files(out: Staged, rows: int, written: list[WrittenFile] | None, layout: str = "partitioned") -> dict[str, Any]:
    """The staged files keep the contract: layout, names, columns, types and row count.

    ``written`` is what the engine says it wrote (path, rows, digest); for an engine that
    cannot say (Spark), the staged files are described here instead.
    """
    found = out.files()
    stray = [p for p in found if not _DATA_FILES[layout].fullmatch(p)]
    if stray:
        raise InternalError(f"the engine wrote unexpected files, e.g. {stray[0]}")
    if written is None:
        written = [out.describe(p) for p in found]
    elif sorted(w.path for w in written) != found:
        raise InputError("the files in staging differ from those the engine wrote",
                         hint="was the staging directory changed during the run?")
    if found:
        got = [(f.name, f.type) for f in out.read_schema(found[0])]
        expected = [(f.name, f.type) for f in TRAINING_SCHEMA if f.name in FILE_COLUMNS or layout == "compact"]
        if got != expected:
            raise InternalError(f"the engine wrote {found[0]} with schema {got}, the contract is {expected}")
    counted = [w.rows for w in written if w.rows is not None]
    if len(counted) == len(written) and sum(counted) != rows:  # remote files are not re-read: see WrittenFile
        raise InternalError(f"the engine wrote {sum(counted):,} rows but classified {rows:,} as valid")
    digest = hashlib.sha256()
    for w in sorted(written, key=lambda w: w.path):
        digest.update(f"{w.path}\0{w.digest}\n".encode())
    partitions = len({w.path.split("/", 1)[0] for w in written}) if layout == "partitioned" else 0
    return {"partitions": partitions, "files": len(written),
            "bytes": sum(w.size for w in written), "fingerprint": "sha256:" + digest.hexdigest()}


_DATA_FILES = {"partitioned": re.compile(rf"{PARTITION_KEY}=-?\d+/part-[^/]*\.parquet"),
               "compact": re.compile(r"part-[^/]*\.parquet")}


def _generator_summary(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {"generator": params.get("generator"), "spec": params.get("spec"), "rmse_floor": params.get("rmse_floor"),
            "ranking_oracle": params.get("ranking_oracle")}
