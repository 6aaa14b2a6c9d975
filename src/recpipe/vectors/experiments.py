"""Experiments, kept in the vector database beside the models they show, where every serving
path (the service, the stream's transformation) reads them: at most one runs at a time, so a
shopper is in one variant of one experiment (``contracts.models.Experiment.assign``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import ValidationError

from recpipe.contracts import models as reg
from recpipe.contracts.models import Experiment, Variant
from recpipe.errors import InputError, NotFound
from recpipe.vectors import registry
from recpipe.vectors.connect import has_table

COLUMNS = ("name", "spec", "started_at", "stopped_at", "report")


def _experiment(row: dict[str, Any]) -> Experiment:
    return Experiment(name=row["name"], variants=tuple(Variant(**v) for v in row["spec"]["variants"]),
                      started_at=row["started_at"], stopped_at=row["stopped_at"])


def all_(conn: Any) -> list[dict[str, Any]]:
    """Every experiment, the running one first, then by start, newest first."""
    if not has_table(conn, reg.EXPERIMENTS):
        return []
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {reg.EXPERIMENTS} "
                        "ORDER BY stopped_at IS NOT NULL, started_at DESC").fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def running(conn: Any) -> Experiment | None:
    if not has_table(conn, reg.EXPERIMENTS):
        return None
    row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {reg.EXPERIMENTS} WHERE stopped_at IS NULL "
                       "ORDER BY started_at DESC LIMIT 1").fetchone()
    return None if row is None else _experiment(dict(zip(COLUMNS, row, strict=True)))


def get(conn: Any, name: str) -> tuple[Experiment, dict[str, Any] | None]:
    """An experiment and the report kept when it stopped (None while it runs)."""
    found = [r for r in all_(conn) if r["name"] == name]
    if not found:
        known = ", ".join(r["name"] for r in all_(conn)) or "none yet"
        raise NotFound(f"there is no experiment {name!r}", hint=f"experiments: {known}")
    return _experiment(found[0]), found[0]["report"]


def start(conn: Any, name: str, variants: list[tuple[str, str]], shares: list[float] | None) -> Experiment:
    """Start ``name`` with ``(variant, model version | popularity)`` pairs; every model it shows
    must be loaded. Refused while another experiment runs or if the name was used."""
    if shares is not None and len(shares) not in (len(variants) - 1, len(variants)):
        raise InputError(f"{len(shares)} split(s) for {len(variants)} variants",
                         hint="give one share per variant, or one fewer (the last takes the rest)")
    split = reg.split(shares, len(variants))
    try:
        experiment = Experiment(name=name, started_at=dt.datetime.now(dt.UTC), variants=tuple(
            Variant(name=v, target=t, share=s) for (v, t), s in zip(variants, split, strict=True)))
    except ValidationError as exc:
        first = exc.errors()[0]
        what = "a variant's share (--split) must be above 0 and at most 100" if "share" in first["loc"] else \
            first["msg"].removeprefix("Value error, ")
        raise InputError(f"experiment {name!r}: {what}",
                         hint="e.g. --variant A=<version> --variant B=popularity --split 50") from None
    with conn.transaction():
        registry.ensure(conn)
        conn.execute(f"LOCK TABLE {reg.EXPERIMENTS} IN EXCLUSIVE MODE")
        now = running(conn)
        if now is not None:
            raise InputError(f"experiment {now.name!r} is running", hint=f"stop it first: `recpipe experiments stop {now.name}`")
        if any(r["name"] == name for r in all_(conn)):
            raise InputError(f"an experiment named {name!r} has run already (its report is kept)",
                             hint="choose another name")
        for version in experiment.versions():
            if registry.tables(conn, version) is None:
                raise NotFound(f"variant model {version} is not loaded in the vector database",
                               hint="`recpipe models list` shows the loaded versions (or use popularity)")
        conn.execute(f"INSERT INTO {reg.EXPERIMENTS} (name, spec, started_at) VALUES (%s, %s, %s)",
                     (name, json.dumps(experiment.spec()), experiment.started_at))
    return experiment


def check_running(experiment: Experiment) -> None:
    if experiment.stopped_at is not None:
        raise InputError(f"experiment {experiment.name!r} stopped already, at {experiment.stopped_at:%Y-%m-%d %H:%M} "
                         "UTC", hint=f"`recpipe experiments report {experiment.name}` shows its kept report")


def stop(conn: Any, name: str, report: dict[str, Any], *, at: dt.datetime | None = None) -> Experiment:
    """End ``name`` (at ``at``, default now) and keep its final report."""
    experiment, _ = get(conn, name)
    check_running(experiment)
    at = at or dt.datetime.now(dt.UTC)
    conn.execute(f"UPDATE {reg.EXPERIMENTS} SET stopped_at = %s, report = %s WHERE name = %s",
                 (at, json.dumps(report, allow_nan=False, default=str), name))
    return experiment.model_copy(update={"stopped_at": at})
