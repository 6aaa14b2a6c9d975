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
from recpipe.errors import RecpipeError, said

MODEL_FIELDS = ("model_version", "created_at", "objective", "embedding_dim", "counts", "metrics", "seconds")


def section(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``read()``'s answer with ``ok``, or ``ok: false`` and the reason."""
    try:
        return {"ok": True, **read()}
    except RecpipeError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    except Exception as exc:  # e.g. an optional dependency of a backend this deployment lacks
        return {"ok": False, "error": f"{type(exc).__name__}: {said(exc)}"}


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


def stream(settings: Settings) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import status

    backends = Backends(settings)
    return status(backends.stream(), backends.recommendations())


def live(settings: Settings, n: int) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import tail

    sink = Backends(settings).recommendations()
    return {"sink": sink.url, "records": tail(sink, n), "read_at": time.time()}


def online(settings: Settings) -> dict[str, Any]:
    """``recpipe report`` from the lake as `etl events` last left it: no read of the sink here."""
    from recpipe.adapters import Backends
    from recpipe.report.pipeline import run

    return run(Backends(settings).lake()).to_json() | {"hourly": None}
