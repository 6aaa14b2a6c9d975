"""The pipeline's state for the page, one section per stage: the training set's manifest, the
published model (its evaluation against the baselines and its training curve), what the
vector database serves, the stream's delivery, and this service's own traffic. A section that
cannot be read (no lake here, a stream on another account) says why instead of failing the
rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from recpipe.config import Settings
from recpipe.contracts import vectors as schema
from recpipe.errors import RecpipeError

MODEL_FIELDS = ("model_version", "created_at", "objective", "embedding_dim", "counts", "metrics", "seconds")


def section(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``read()``'s answer with ``ok``, or ``ok: false`` and the reason."""
    try:
        return {"ok": True, **read()}
    except RecpipeError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    except Exception as exc:  # e.g. an optional dependency of a backend this deployment lacks
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"}


def etl(settings: Settings) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.contracts.dataset import DatasetManifest

    manifest = DatasetManifest.read(Backends(settings).lake()).to_json()
    return {key: manifest.get(key) for key in ("version", "created_at", "engine", "source", "rows", "partitions",
                                               "files", "bytes", "location", "quarantine", "source_rows")}


def model(settings: Settings) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.contracts.artifacts import ModelManifest

    store, name = Backends(settings).artifacts()
    doc = ModelManifest.read(store, name).to_json()
    training = doc.get("training") or {}
    return {**{key: doc.get(key) for key in MODEL_FIELDS}, "artifacts": store.location(name),
            "best_epoch": training.get("best_epoch"), "history": training.get("history", [])}


def vectors(conn: Any) -> dict[str, Any]:
    """What is loaded, with each table's rows and size and the HNSW parameters."""
    if conn.execute("SELECT to_regclass(%s)", (schema.META,)).fetchone()[0] is None:
        return {"loaded": None, "tables": []}
    columns = ("model_version", "artifacts", "items", "users", "catalog", "loaded_at")
    row = conn.execute(f"SELECT {', '.join(columns)} FROM {schema.META}").fetchone()
    tables = []
    for table in (schema.ITEMS, schema.USERS, schema.CATALOG, schema.CUSTOMERS, schema.PURCHASES):
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            continue
        rows, size = conn.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}").fetchone()
        tables.append({"table": table, "rows": rows, "bytes": size, "indexes": sorted(schema.INDEXES[table].values())})
    loaded = None if row is None else dict(zip(columns, row, strict=True))
    if loaded and loaded["loaded_at"] is not None:
        loaded["loaded_at"] = loaded["loaded_at"].isoformat()
    return {"loaded": loaded, "hnsw": schema.HNSW, "tables": tables}


def stream(settings: Settings) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import status

    return status(Backends(settings).stream(), Backends(settings).recommendations())


def live(settings: Settings, n: int) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import tail

    sink = Backends(settings).recommendations()
    return {"sink": sink.url, "records": tail(sink, n), "read_at": time.time()}
