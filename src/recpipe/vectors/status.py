"""The vectors stage's state, read on an open connection (no Arrow: the service imports it):
what is loaded and each table's rows, size and indexes."""

from __future__ import annotations

from typing import Any

from recpipe.contracts import vectors as schema
from recpipe.vectors.connect import has_table

LOADED = ("model_version", "artifacts", "items", "users", "catalog", "loaded_at")


def loaded_on(conn: Any) -> dict[str, Any] | None:
    """``loaded()`` on an open connection."""
    if not has_table(conn, schema.META):
        return None
    row = conn.execute(f"SELECT {', '.join(LOADED)} FROM {schema.META}").fetchone()
    return None if row is None else dict(zip(LOADED, row, strict=True))


def status(conn: Any) -> dict[str, Any]:
    """The vectors stage for the page: what is loaded, each table's rows, size and indexes, and
    the HNSW parameters."""
    info = loaded_on(conn)
    if info is None:
        return {"loaded": None, "tables": []}
    tables = []
    for table in (schema.ITEMS, schema.USERS, schema.CATALOG, schema.CUSTOMERS, schema.PURCHASES):
        if not has_table(conn, table):
            continue
        rows, size = conn.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}").fetchone()
        tables.append({"table": table, "rows": rows, "bytes": size, "indexes": sorted(schema.INDEXES[table].values())})
    if info["loaded_at"] is not None:
        info["loaded_at"] = info["loaded_at"].isoformat()
    return {"loaded": info, "hnsw": schema.HNSW, "tables": tables}

