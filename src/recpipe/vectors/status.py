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
    """The vectors stage for the page: what is loaded and serving, each loaded model's tables and
    the shop's (rows, size, indexes), the HNSW parameters and the running experiment."""
    from recpipe.vectors import experiments, registry

    info = loaded_on(conn)
    if info is None:
        return {"loaded": None, "tables": [], "models": [], "experiment": None}
    serving = info["model_version"]
    models, tables = [], []
    for m in registry.loaded(conn):
        t = registry.tables(conn, m["version"])
        models.append({"version": m["version"], "serving": m["version"] == serving, "items": m["items"],
                       "users": m["users"], "loaded_at": m["loaded_at"].isoformat(),
                       "gate": (m["gate"] or {}).get("reason")})
        if t is not None:
            tables += [(t.items, [f"{t.items}_hnsw", f"{t.items}_line"]), (t.users, [f"{t.users}_hnsw"])]
    tables += [(table, sorted(schema.INDEXES[table].values())) for table in (schema.CATALOG, schema.CUSTOMERS,
                                                                            schema.PURCHASES)]
    found = []
    for table, indexes in tables:
        if not has_table(conn, table):
            continue
        rows, size = conn.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}").fetchone()
        found.append({"table": table, "rows": rows, "bytes": size, "indexes": indexes})
    if info["loaded_at"] is not None:
        info["loaded_at"] = info["loaded_at"].isoformat()
    running = experiments.running(conn)
    return {"loaded": info, "hnsw": schema.HNSW, "tables": found, "models": models,
            "experiment": None if running is None else running.model_dump(mode="json")}
