"""The life of a model after training (``recpipe models``): what the registry holds, what the
vector database has loaded and serves, a promotion by hand and a rollback.

The registry is the artifacts store (``contracts.artifacts.VERSIONS``): every model ``train``
published, whole. The vector database holds up to ``keep`` of them loaded
(``vectors.registry``), one serving.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from recpipe.adapters.base import Lake, VectorDatabase
from recpipe.contracts.artifacts import MANIFEST, VERSIONS, ModelManifest, artifact_path, registered
from recpipe.errors import NotFound
from recpipe.progress import SILENT, Progress
from recpipe.vectors import experiments, registry
from recpipe.vectors.connect import connect
from recpipe.vectors.gate import FIGURES, figure

SUMMARY = ("recall@10", "ndcg@10", "next item hit@10 (customers)", "rmse")


def versions(store: Lake) -> list[str]:
    """Every registered version, oldest first (a version whose manifest is not written yet is
    not complete, and not listed)."""
    suffix = f"/{MANIFEST}"
    found = [f[len(VERSIONS) + 1:-len(suffix)] for f in store.list_files(f"{VERSIONS}/") if f.endswith(suffix)]
    return sorted(v for v in found if "/" not in v)


def require_registered(store: Lake, version: str) -> str:
    """The artifacts name of a registered version (``contracts.artifacts.registered``), or NotFound."""
    name = registered(version)
    if store.read_bytes(artifact_path(name, MANIFEST)) is None:
        raise NotFound(f"model {version} is not in the registry at {store.location(VERSIONS)}",
                       hint="`recpipe models list` shows the known versions")
    return name


def figures(metrics: dict[str, Any] | None) -> dict[str, float]:
    """The gate's figures a manifest has, by name."""
    out = {}
    for name, path, *_ in FIGURES:
        value = figure(metrics or {}, path)
        if value is not None:
            out[name] = round(value, 4)
    return out


def listing(db: VectorDatabase, store: Lake, only: str | None = None) -> list[dict[str, Any]]:
    """Every model the registry or the vector database knows (``only``: that version, if either
    knows it), newest first: when it was made, its objective and figures, whether it is loaded,
    serving, the one a rollback would bring back, or shown by the running experiment, and its
    gate verdict."""
    with connect(db) as conn:
        loaded = {m["version"]: m for m in registry.loaded(conn)}
        serving = registry.serving(conn)
        standing = registry.stack(registry.promotions(conn))
        running = experiments.running(conn)
    back = standing[-2] if len(standing) >= 2 else None
    shown = set(running.versions()) if running else set()
    rows = {}
    for version in versions(store) if only is None else [v for v in versions(store) if v == only]:
        m = ModelManifest.read(store, registered(version))
        rows[version] = {"version": version, "created_at": m.created_at, "objective": m.objective,
                         "figures": figures(m.metrics), "registered": True}
    for version, row_ in loaded.items():
        if only is None or version == only:
            rows.setdefault(version, {"version": version, "created_at": None, "objective": row_["objective"],
                                      "figures": figures(row_["metrics"]), "registered": False})
    for version, row in rows.items():
        got = loaded.get(version)
        gate = (got or {}).get("gate") or {}
        row |= {"loaded": got is not None, "serving": version == serving, "rollback_target": version == back,
                "experiment": running.name if version in shown and running else None,
                "loaded_at": got["loaded_at"].isoformat() if got else None, "gate_verdict": gate or None,
                "gate": None if not gate else ("forced" if gate.get("forced") else
                                               "passed" if gate.get("passed") else "failed")}
    return sorted(rows.values(), key=lambda r: (r["created_at"] or r["loaded_at"] or "", r["version"]), reverse=True)


def show(db: VectorDatabase, store: Lake, version: str) -> dict[str, Any]:
    """One model: its manifest (from the registry), its load and gate verdict, its promotions."""
    found = listing(db, store, only=version)
    if not found:
        raise NotFound(f"there is no model {version!r} in the registry or the vector database",
                       hint="`recpipe models list` shows them")
    row = found[0]
    with connect(db) as conn:
        history = [p for p in registry.promotions(conn) if version in (p["version"], p["previous"])]
    for p in history:
        p["at"] = p["at"].isoformat()
    manifest = ModelManifest.read(store, registered(version)).to_json() if row["registered"] else None
    return {**row, "promotions": history, "manifest": manifest,
            "artifacts": store.location(registered(version)) if row["registered"] else None}


@dataclass(frozen=True)
class Switch:
    """What a promotion or rollback did."""

    action: str  # promote | rollback
    version: str  # serving now
    previous: str | None
    loaded: bool  # the vectors had to be loaded first (from the registry)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def promote(db: VectorDatabase, store: Lake, version: str, *, keep: int, progress: Progress = SILENT) -> Switch:
    """Serve ``version`` whatever the gate would say: at once if it is loaded, else loaded from
    the registry first."""
    from recpipe.vectors.pipeline import run, switching

    started = time.perf_counter()
    with connect(db) as conn:
        previous = registry.serving(conn)
        if registry.tables(conn, version) is not None:
            progress.status(f"serving model {version}")
            switching(conn, lambda: registry.point(conn, version, "promote", note="promoted by hand"))
            return Switch("promote", version, previous, False, round(time.perf_counter() - started, 3))
    run(db, store, require_registered(store, version), force=True, keep=keep, action="promote", progress=progress)
    return Switch("promote", version, previous, True, round(time.perf_counter() - started, 3))


def rollback(db: VectorDatabase) -> Switch:
    """Serve the model promoted before the serving one again, from its loaded tables."""
    from recpipe.vectors.pipeline import switching

    started = time.perf_counter()
    done: dict[str, str | None] = {}

    def back() -> None:
        done["previous"], done["target"] = registry.serving(conn), registry.rollback_target(conn)
        registry.point(conn, str(done["target"]), "rollback", note=f"rolled back from {done['previous']}")

    with connect(db) as conn:
        switching(conn, back)
    return Switch("rollback", str(done["target"]), done["previous"], False, round(time.perf_counter() - started, 3))
