"""``recpipe models``: the registry of trained models, which one serves, promotion and rollback."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from recpipe.cli.output import bars, console, emit_json, mapping, table
from recpipe.cli.vectors import ArtifactsUrl, Json, VectorsUrl
from recpipe.config import Settings, load_settings

app = typer.Typer(help="Trained models: the registry, which one serves, promotion and rollback.",
                  no_args_is_help=True)
Version = Annotated[str, typer.Argument(help="A model version (`recpipe models list`).", show_default=False)]


def _backends(artifacts_url: str | None, vectors_url: str | None) -> tuple[Settings, Any, Any, str]:
    from recpipe.adapters import Backends

    settings = load_settings({"artifacts_url": artifacts_url, "vectors_url": vectors_url})
    store, name = Backends(settings).artifacts()
    return settings, Backends(settings).vectors(), store, name


def _state(row: dict[str, Any]) -> str:
    parts = ["serving" if row["serving"] else "loaded" if row["loaded"] else "registered"]
    if row["rollback_target"]:
        parts.append("rollback target")
    if row["experiment"]:
        parts.append(f"in {row['experiment']}")
    return ", ".join(parts)


@app.command("list")
def list_(artifacts_url: ArtifactsUrl = None, vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Every trained model (the registry in the artifacts store) and what the vector database does
    with it: serving, loaded, the one `recpipe models rollback` would serve, shown by an experiment."""
    from recpipe.vectors.models import SUMMARY, listing

    _, db, store, _ = _backends(artifacts_url, vectors_url)
    rows = listing(db, store)
    if as_json:
        emit_json(rows)
        return
    table("models, newest first", ("version", "created", "objective", *SUMMARY, "state", "gate"),
          [(r["version"], (r["created_at"] or "")[:19], r["objective"] or "-",
            *(r["figures"].get(f, "-") for f in SUMMARY), _state(r), r["gate"] or "-") for r in rows])


@app.command("show")
def show(version: Version, artifacts_url: ArtifactsUrl = None, vectors_url: VectorsUrl = None,
         as_json: Json = False) -> None:
    """One model: its figures, the data it saw, its gate verdict and its promotions."""
    from recpipe.cli.vectors import gate_table
    from recpipe.vectors.models import show as show_model

    _, db, store, _ = _backends(artifacts_url, vectors_url)
    doc = show_model(db, store, version)
    if as_json:
        emit_json(doc)
        return
    manifest = doc["manifest"] or {}
    data = manifest.get("data") or {}
    mapping(f"model {version}", {
        "state": _state(doc), "created": doc["created_at"], "objective": doc["objective"],
        **doc["figures"], "trained on": f"{data.get('rows', '-')} rows of {data.get('source', '-')}",
        "events seen": (manifest.get("training") or {}).get("events", {}).get("used", "-"),
        "loaded at": doc["loaded_at"] or "-", "artifacts": doc["artifacts"] or "-"})
    if doc["gate_verdict"]:
        gate_table(doc["gate_verdict"])
    if doc["promotions"]:
        table("promotions", ("at", "action", "serving", "before", "note"),
              [(p["at"][:19], p["action"], p["version"], p["previous"] or "-", p["note"] or "") for p in doc["promotions"]])


@app.command("promote")
def promote(version: Version, artifacts_url: ArtifactsUrl = None, vectors_url: VectorsUrl = None,
            as_json: Json = False) -> None:
    """Serve VERSION now, whatever the gate says: at once if it is loaded, else loaded from the
    registry first. The service and the stream switch within RECPIPE_SERVE_SWITCH_EVERY (1 s)."""
    from recpipe.vectors.models import promote as promote_model

    settings, db, store, _ = _backends(artifacts_url, vectors_url)
    with bars(quiet=as_json, transient=True) as progress:
        done = promote_model(db, store, version, keep=settings.models_keep, progress=progress)
    _switched(done.to_json(), as_json)


@app.command("rollback")
def rollback(vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Serve the model promoted before the serving one again, from its loaded vectors (nothing is
    copied); again, the one before that."""
    from recpipe.vectors.models import rollback as roll_back

    _, db, _, _ = _backends(None, vectors_url)
    _switched(roll_back(db).to_json(), as_json)


def _switched(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    how = " (loaded from the registry first)" if doc["loaded"] else ""
    console.print(f"{doc['action']}: model {escape(doc['version'])} serves now, instead of "
                  f"{escape(doc['previous'] or 'nothing')}{how}, in {doc['seconds']:.2f} s.")
