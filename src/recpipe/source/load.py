"""Writing a generated shop into a source database, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts.source import TABLE_ORDER
from recpipe.progress import SILENT, Progress
from recpipe.source.generate import Shop


def write_shop(db: SourceDatabase, shop: Shop, *, replace: bool = False,
               progress: Progress = SILENT) -> dict[str, int]:
    """Create the classicmodels + ratings tables and bulk-load the shop; all or nothing."""
    with db.build(replace=replace, fresh=True, tables=TABLE_ORDER) as loader:
        loader.create_tables(TABLE_ORDER, indexes=False)
        for name in TABLE_ORDER:
            loader.bulk_insert(name, shop.tables[name], progress)
        loader.create_indexes(TABLE_ORDER)
    return shop.counts()


def sidecar_path(home: Path, db: SourceDatabase) -> Path:
    """Where the generator's parameters for ``db`` live: beside a SQLite file, else in home."""
    if db.dialect == "sqlite":
        path = Path(db.url.removeprefix("sqlite:///"))
        return path.with_name(path.name + ".generator.json")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in db.url.split("://", 1)[-1])
    return home / "generator" / f"{db.dialect}-{safe}.json"


def write_sidecar(path: Path, params: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(params, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
