"""The models the vector database holds, and which one serves (``recpipe.contracts.models``).

* ``install``: a loaded version's staged tables take their versioned names (a version loaded
  again replaces its own tables).
* ``point``: the serving model changes in one transaction: the views ``item_emb``/``user_emb``,
  the ``recpipe_vectors`` row serving reads, and a promotion record. A query running meanwhile
  finishes on the tables it started with; serving, which checks every second, moves to the new
  tables whole.
* ``rollback``: promotions form a stack (a promotion pushes, a rollback pops); the version below
  the top serves again, from the tables still loaded: nothing is copied.
* ``retain``: beyond ``keep`` loaded versions the oldest are dropped, never the serving one, the
  one a rollback would bring back, or one a running experiment shows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from recpipe.contracts import models as reg
from recpipe.contracts import vectors as schema
from recpipe.contracts.models import ModelTables
from recpipe.errors import InputError, NotFound
from recpipe.vectors.connect import has_table

MODEL_ROW = ("version", "slug", "artifacts", "objective", "items", "users", "loaded_at", "metrics", "gate")


def ensure(conn: Any) -> None:
    """The bookkeeping tables (created by the first load)."""
    for ddl in (schema.CREATE_META, reg.CREATE_MODELS, reg.CREATE_PROMOTIONS, reg.CREATE_EXPERIMENTS):
        conn.execute(ddl)


def tables(conn: Any, version: str) -> ModelTables | None:
    """The tables of a loaded version (None: not loaded, or a database without the registry)."""
    if not has_table(conn, reg.MODELS):
        return None
    row = conn.execute(f"SELECT slug FROM {reg.MODELS} WHERE version = %s", (version,)).fetchone()
    return None if row is None else ModelTables.of(version, row[0])


def serving(conn: Any) -> str | None:
    if not has_table(conn, schema.META):
        return None
    row = conn.execute(f"SELECT model_version FROM {schema.META}").fetchone()
    return None if row is None else row[0]


def loaded(conn: Any) -> list[dict[str, Any]]:
    """Every loaded version, newest load first."""
    if not has_table(conn, reg.MODELS):
        return []
    rows = conn.execute(f"SELECT {', '.join(MODEL_ROW)} FROM {reg.MODELS} ORDER BY loaded_at DESC, version").fetchall()
    return [dict(zip(MODEL_ROW, r, strict=True)) for r in rows]


def find(conn: Any, version: str) -> dict[str, Any] | None:
    """A loaded version's row (``MODEL_ROW``), or None."""
    if not has_table(conn, reg.MODELS):
        return None
    row = conn.execute(f"SELECT {', '.join(MODEL_ROW)} FROM {reg.MODELS} WHERE version = %s", (version,)).fetchone()
    return None if row is None else dict(zip(MODEL_ROW, row, strict=True))


def model(conn: Any, version: str) -> dict[str, Any]:
    found = find(conn, version)
    if found is None:
        raise NotFound(f"model {version} is not loaded in the vector database",
                       hint="`recpipe models list` shows the loaded versions; `recpipe models promote "
                            "VERSION` loads a registered one")
    return found


def promotions(conn: Any) -> list[dict[str, Any]]:
    """Every change of the serving model, oldest first."""
    if not has_table(conn, reg.PROMOTIONS):
        return []
    rows = conn.execute(f"SELECT seq, version, previous, action, at, note FROM {reg.PROMOTIONS} ORDER BY seq").fetchall()
    return [dict(zip(("seq", "version", "previous", "action", "at", "note"), r, strict=True)) for r in rows]


def stack(history: list[dict[str, Any]]) -> list[str]:
    """The promotions still standing, oldest first (the last one serves): a rollback pops."""
    out: list[str] = []
    for p in history:
        if p["action"] == "rollback":
            if out:
                out.pop()
            if not out or out[-1] != p["version"]:
                out.append(p["version"])
        else:
            out.append(p["version"])
    return out


def install(conn: Any, staged: dict[str, str], version: str, *, artifacts: str, objective: str, items: int,
            users: int, metrics: dict[str, Any], gate: dict[str, Any] | None) -> ModelTables:
    """In the caller's transaction: the staged tables become ``version``'s (``staged`` maps the
    canonical names ITEMS/USERS/MODEL to the staged tables, indexes named ``<staged>_hnsw`` etc.)."""
    ensure(conn)
    adopt_legacy(conn)
    t = ModelTables.of(version, reg.slug(version))
    serving_now = serving(conn)
    for canonical, target in ((schema.ITEMS, t.items), (schema.USERS, t.users), (schema.MODEL, t.files)):
        conn.execute(f"DROP TABLE IF EXISTS {target} CASCADE")  # loaded again: its own old tables (and views)
        conn.execute(f"ALTER TABLE {staged[canonical]} RENAME TO {target}")
        names = schema.INDEXES[canonical]
        for kind in ("hnsw", "line"):
            if kind in names:
                conn.execute(f"ALTER INDEX {staged[canonical]}_{kind} RENAME TO {target}_{kind}")
        conn.execute(f"ALTER INDEX {staged[canonical]}_pkey RENAME TO {target}_pkey")
    conn.execute(
        f"INSERT INTO {reg.MODELS} (version, slug, artifacts, objective, items, users, loaded_at, metrics, gate) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (version) DO UPDATE SET artifacts = EXCLUDED.artifacts, "
        "objective = EXCLUDED.objective, items = EXCLUDED.items, users = EXCLUDED.users, "
        "loaded_at = EXCLUDED.loaded_at, metrics = EXCLUDED.metrics, gate = EXCLUDED.gate",
        (version, reg.slug(version), artifacts, objective, items, users, dt.datetime.now(dt.UTC),
         json.dumps(metrics, allow_nan=False), None if gate is None else json.dumps(gate, allow_nan=False)))
    if serving_now == version:  # the serving version loaded again: its views were dropped with its tables
        _views(conn, t)
    return t


def point(conn: Any, version: str, action: str, *, note: str | None = None) -> None:
    """In the caller's transaction: ``version`` (loaded) serves from now on."""
    if action not in reg.ACTIONS:
        raise ValueError(action)
    ensure(conn)
    adopt_legacy(conn)
    t = tables(conn, version)
    if t is None:
        raise NotFound(f"model {version} is not loaded in the vector database",
                       hint="load it first: `recpipe models promote VERSION` loads a registered one")
    row = model(conn, version)
    previous = serving(conn)
    _views(conn, t)
    conn.execute(
        f"INSERT INTO {schema.META} (singleton, model_version, artifacts, items, users, loaded_at) "
        "VALUES (true, %(version)s, %(artifacts)s, %(items)s, %(users)s, %(at)s) "
        "ON CONFLICT (singleton) DO UPDATE SET model_version = EXCLUDED.model_version, "
        "artifacts = EXCLUDED.artifacts, items = EXCLUDED.items, users = EXCLUDED.users, loaded_at = EXCLUDED.loaded_at",
        {"version": version, "artifacts": row["artifacts"], "items": row["items"], "users": row["users"],
         "at": dt.datetime.now(dt.UTC)})
    conn.execute(f"INSERT INTO {reg.PROMOTIONS} (version, previous, action, at, note) VALUES (%s, %s, %s, %s, %s)",
                 (version, previous, action, dt.datetime.now(dt.UTC), note))


def rollback_target(conn: Any) -> str:
    """The version a rollback serves: the one promoted before the serving one."""
    standing = stack(promotions(conn))
    if len(standing) < 2:
        raise InputError("there is no earlier promoted model to roll back to",
                         hint="`recpipe models list` shows the loaded versions; `recpipe models promote VERSION` "
                              "serves any of them")
    target = standing[-2]
    if tables(conn, target) is None:
        raise InputError(f"the model to roll back to, {target}, is no longer loaded (retention dropped it)",
                         hint=f"`recpipe models promote {target}` loads it again from the registry")
    return target


def protected(conn: Any) -> set[str]:
    """Versions retention keeps: the serving one, the one a rollback brings back, and those a
    running experiment shows."""
    keep = set(stack(promotions(conn))[-2:])
    now = serving(conn)
    if now:
        keep.add(now)
    if has_table(conn, reg.EXPERIMENTS):
        for (spec,) in conn.execute(f"SELECT spec FROM {reg.EXPERIMENTS} WHERE stopped_at IS NULL").fetchall():
            keep |= {v["target"] for v in spec["variants"] if v["target"] != reg.POPULARITY}
    return keep


def retain(conn: Any, keep: int) -> list[str]:
    """Drop the oldest loaded versions beyond ``keep`` (never a protected one); the dropped ones."""
    versions = [m["version"] for m in loaded(conn)]  # newest first
    safe = protected(conn)
    room = max(keep - len(safe & set(versions)), 0)
    dropped = []
    for v in versions:
        if v in safe:
            continue
        if room > 0:
            room -= 1
            continue
        t = ModelTables.of(v, reg.slug(v))
        for table in (t.items, t.users, t.files):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"DELETE FROM {reg.MODELS} WHERE version = %s", (v,))
        dropped.append(v)
    return dropped


def adopt_legacy(conn: Any) -> None:
    """A database loaded before models were versioned holds plain ``item_emb``/``user_emb``
    tables: those of the version ``recpipe_vectors`` names become that version's (so it can be
    rolled back to); plain tables of no known version (``sql/embeddings.sql``) are dropped."""
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (schema.ITEMS,)).fetchone()
    if kind is None or kind[0] == "v":
        return
    version = serving(conn)
    if version is None or tables(conn, version) is not None or not has_table(conn, schema.USERS):
        for table in (schema.ITEMS, schema.USERS):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        return
    t = ModelTables.of(version, reg.slug(version))
    items = conn.execute(f"SELECT count(*) FROM {schema.ITEMS}").fetchone()[0]
    users = conn.execute(f"SELECT count(*) FROM {schema.USERS}").fetchone()[0]
    conn.execute(f"ALTER TABLE {schema.ITEMS} RENAME TO {t.items}")
    conn.execute(f"ALTER TABLE {schema.USERS} RENAME TO {t.users}")
    if has_table(conn, schema.MODEL):
        conn.execute(f"ALTER TABLE {schema.MODEL} RENAME TO {t.files}")
    else:
        conn.execute(schema.create_model(t.files))
    conn.execute(f"INSERT INTO {reg.MODELS} (version, slug, artifacts, objective, items, users, loaded_at) "
                 f"SELECT %s, %s, artifacts, NULL, %s, %s, coalesce(loaded_at, now()) FROM {schema.META}",
                 (version, reg.slug(version), items, users))
    conn.execute(f"INSERT INTO {reg.PROMOTIONS} (version, previous, action, at, note) VALUES (%s, NULL, 'adopted', "
                 "now(), 'loaded before models were versioned')", (version,))
    _views(conn, t)


def _views(conn: Any, t: ModelTables) -> None:
    """The seed's table names, as views of ``t``'s tables (read-only; same columns)."""
    for name, table, columns in ((schema.ITEMS, t.items, "id, embedding, product_line, quantity_in_stock"),
                                 (schema.USERS, t.users, "id, embedding")):
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {columns} FROM {table}")
