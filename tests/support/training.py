"""Helpers for training tests: a lake built by the real ETL, or a hand-made (broken) dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recpipe.adapters import open_lake, open_source
from recpipe.contracts.dataset import (
    DATASET,
    MANIFEST,
    PARTITION_KEY,
    TRAINING_SCHEMA,
    schema_document,
)
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop


def etl_lake(root: Path, spec: ShopSpec, layout: str = "partitioned") -> Path:
    """Generate a shop into SQLite and run the DuckDB ETL into ``root/lake``; return the lake."""
    root.mkdir(parents=True, exist_ok=True)
    shop = generate_shop(spec)
    db = open_source(f"sqlite:///{root / 'source.db'}")
    write_shop(db, shop)
    run_etl(db, open_lake(str(root / "lake")), generator=shop.params, layout=layout)
    return root / "lake"


def write_dataset(lake: Path, table: pa.Table) -> None:
    """Write ``table`` (the contract's columns) as a published dataset, bypassing the ETL."""
    target = lake / DATASET
    target.mkdir(parents=True)
    for key in sorted(set(table[PARTITION_KEY].to_pylist())):
        part = table.filter(pa.compute.equal(table[PARTITION_KEY], key)).drop_columns([PARTITION_KEY])
        (target / f"{PARTITION_KEY}={key}").mkdir()
        pq.write_table(part, target / f"{PARTITION_KEY}={key}" / "part-0.parquet")
    (target / MANIFEST).write_text(json.dumps(hand_made_manifest(lake, table.num_rows)))


def hand_made_manifest(lake: Path, rows: int) -> dict[str, object]:
    """A valid dataset manifest for a dataset written by hand (``DatasetManifest``'s fields)."""
    return {"dataset": DATASET, "version": "hand-made", "created_at": "2026-01-01T00:00:00+00:00",
            "recpipe_version": "test", "engine": "duckdb", "source": "hand-made", "source_rows": {"ratings": rows},
            "rows": rows, "partition_key": PARTITION_KEY, "partitions": 0, "files": 0, "bytes": 0,
            "fingerprint": "", "schema": schema_document(TRAINING_SCHEMA), "format": {"type": "parquet"},
            "location": str(lake / DATASET), "generator": None, "seconds": {},
            "quarantine": {"rows": 0, "fraction": 0.0, "by_reason": {}, "reasons": {}, "location": "",
                           "schema": []}}


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes, for before/after comparisons."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
