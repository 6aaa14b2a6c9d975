"""The vectors stage's entry point (``run``, behind ``recpipe vectors load``): the artifacts'
embeddings into PostgreSQL + pgvector, atomically.

1. Read and check the CSVs (nothing touches the database if a file is bad).
2. Under an advisory lock (one load at a time), binary-COPY into fresh tables with
   unique names, build their HNSW (cosine) indexes and ANALYZE them.
3. Switch in one transaction: the catalog tables are replaced, the model's tables take their
   versioned names beside the other loaded models' (``vectors.registry``), and, if the gate
   (``vectors.gate``) lets it, the model serves. A query running meanwhile finishes on the old
   tables (the switch waits for it); a failure at any step drops the new tables and leaves
   what served serving.
4. Retention: loaded models beyond ``keep`` are dropped, oldest first (``registry.retain``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from recpipe.adapters.base import Lake, SourceDatabase, VectorDatabase
from recpipe.contracts import vectors as schema
from recpipe.contracts.artifacts import (
    ITEM_ATTRIBUTES,
    ITEM_EMBEDDINGS,
    SERVING_FILES,
    USER_EMBEDDINGS,
    ModelManifest,
    artifact_path,
)
from recpipe.errors import InputError, ServiceError
from recpipe.progress import SILENT, Progress
from recpipe.vectors import registry
from recpipe.vectors.connect import connect, ensure_vector_extension, has_table
from recpipe.vectors.files import Embeddings, parse_attributes, parse_embeddings
from recpipe.vectors.gate import DEFAULT_TOLERANCE, Verdict, judge
from recpipe.vectors.status import loaded_on

DEFAULT_KEEP = 3  # loaded models kept in the vector database (RECPIPE_MODELS_KEEP)

LOCK_KEY = 7_406_513_002  # pg_advisory_lock key: one load at a time per database


def read_artifacts(store: Lake, name: str) -> dict[str, Any]:
    """The embeddings (and item attributes, if present) of the published artifacts, checked."""
    where = store.location(name)
    files: dict[str, Any] = {}
    for key, path, id_type in (("items", ITEM_EMBEDDINGS, pa.string()), ("users", USER_EMBEDDINGS, pa.int32())):
        data = store.read_bytes(artifact_path(name, path))
        if data is None:
            raise InputError(f"no {path} in the artifacts at {where}",
                             hint="run `recpipe train` first, or point RECPIPE_ARTIFACTS_URL at the artifacts")
        files[key] = parse_embeddings(data, f"{where}/{path}", id_type=id_type)
    attributes = store.read_bytes(artifact_path(name, ITEM_ATTRIBUTES))
    files["attributes"] = None if attributes is None else parse_attributes(attributes, f"{where}/{ITEM_ATTRIBUTES}")
    files["manifest"] = ModelManifest.read(store, name)
    # the serving files go into the database with the embeddings; artifacts with embeddings
    # only (made by other tools) load without them, and serving then reads the artifacts' model
    model = {path: store.read_bytes(artifact_path(name, path)) for path in SERVING_FILES}
    missing = [path for path, data in model.items() if data is None]
    if missing and len(missing) < len(model):
        raise InputError(f"the artifacts at {where} have {', '.join(p for p in model if p not in missing)} "
                         f"but no {', '.join(missing)}", hint="publish the model again with `recpipe train`")
    files["model"] = {} if missing else model
    return files


@dataclass(frozen=True)
class LoadResult:
    """What the vector database serves after a load."""

    model_version: str
    items: int
    users: int
    vectors: str  # the database's URL, password masked
    catalog: int | None  # products in the catalog table (None: not loaded, no source given)
    purchases: int | None
    artifacts: str
    seconds: dict[str, float]
    promoted: bool = True  # the loaded model serves now
    serving: str | None = None  # the version serving after the load
    gate: dict[str, Any] | None = None  # the gate's verdict (``vectors.gate.Verdict``)
    dropped: list[str] | None = None  # loaded versions retention removed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LoadResult:
        return cls(**doc)


def run(db: VectorDatabase, store: Lake, name: str, *, source: SourceDatabase | None = None,
        progress: Progress = SILENT, force: bool = False, tolerance: float = DEFAULT_TOLERANCE,
        keep: int = DEFAULT_KEEP, action: str | None = None) -> LoadResult:
    """Load the artifacts' embeddings (and, from ``source``, the catalog and purchases that
    serving uses) beside the models already loaded, and serve them if the gate passes (or
    ``force``); return what is now served."""
    step = progress.status
    started = time.perf_counter()
    step(f"reading the embeddings from {store.location(name)}")
    files = read_artifacts(store, name)
    items, users = files["items"], files["users"]
    catalog = purchases = customers = None
    if source is not None:
        from recpipe.vectors.catalog import read_catalog, read_customers, read_purchases

        step(f"reading the catalog, customers and purchases from {source.url}")
        catalog, purchases, customers = read_catalog(source), read_purchases(source), read_customers(source)
    manifest = files["manifest"]
    version = manifest.model_version
    seconds: dict[str, float] = {}
    verdict: Verdict | None = None
    dropped: list[str] = []
    with connect(db) as conn:
        ensure_vector_extension(conn, db.url)
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        suffix = uuid.uuid4().hex[:8]
        new = {schema.ITEMS: f"{schema.ITEMS}__new_{suffix}", schema.USERS: f"{schema.USERS}__new_{suffix}",
               schema.MODEL: f"{schema.MODEL}__new_{suffix}"}
        if catalog is not None:
            new |= {table: f"{table}__new_{suffix}" for table in (schema.CATALOG, schema.PURCHASES, schema.CUSTOMERS)}
        try:
            _drop_leftovers(conn)
            conn.execute(schema.create_items(new[schema.ITEMS]))
            conn.execute(schema.create_users(new[schema.USERS]))
            conn.execute(schema.create_model(new[schema.MODEL]))
            _copy(conn, new[schema.MODEL], file=("varchar", list(files["model"])),
                  data=("bytea", list(files["model"].values())))
            if catalog is not None and purchases is not None and customers is not None:  # read together above
                conn.execute(schema.create_catalog(new[schema.CATALOG]))
                conn.execute(schema.create_purchases(new[schema.PURCHASES]))
                conn.execute(schema.create_customers(new[schema.CUSTOMERS]))
                text, ints, floats = ("varchar", "int4", "float8")
                _copy(conn, new[schema.CATALOG], **{c: (t, catalog[c].to_pylist()) for c, t in (
                    ("id", text), ("product_line", text), ("quantity_in_stock", ints), ("name", text),
                    ("scale", text), ("vendor", text), ("msrp", floats))})
                _copy(conn, new[schema.CUSTOMERS], **{c: (t, customers[c].to_pylist()) for c, t in (
                    ("id", ints), ("name", text), ("city", text), ("country", text), ("credit_limit", floats))})
                _copy(conn, new[schema.PURCHASES], customer_number=("int4", purchases["customerNumber"].to_pylist()),
                      product_code=("varchar", purchases["productCode"].to_pylist()),
                      rating=("int4", purchases["productRating"].to_pylist()))
            t0 = time.perf_counter()
            step(f"copying {len(items):,} item and {len(users):,} user embeddings")
            # the source's catalog is fresher than the training snapshot in the artifacts
            attributes = files["attributes"] if catalog is None else catalog
            lines, stock = _attributes(items, attributes)
            _copy(conn, new[schema.ITEMS], id=("varchar", items.ids.to_pylist()), embedding=("vector", items.vectors),
                  product_line=("varchar", lines), quantity_in_stock=("int4", stock))
            _copy(conn, new[schema.USERS], id=("int4", users.ids.to_pylist()), embedding=("vector", users.vectors))
            seconds["copy"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            step("building the HNSW indexes")
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute("SET max_parallel_maintenance_workers = 1")
            for table, names in schema.INDEXES.items():
                if table not in new:
                    continue
                if "hnsw" in names:
                    conn.execute(schema.hnsw_index(new[table], f"{new[table]}_hnsw"))
                if "line" in names:
                    conn.execute(schema.line_index(new[table], f"{new[table]}_line"))
                conn.execute(f"ANALYZE {new[table]}")
            seconds["index"] = time.perf_counter() - t0
            verdict = _verdict(conn, manifest.metrics, tolerance, force)
            step("switching the new embeddings in" if verdict.passed else "keeping the serving model (gate failed)")
            switching(conn, lambda: _switch_once(
                conn, new, version=version, artifacts=store.location(name), items=len(items), users=len(users),
                catalog=None if catalog is None else catalog.num_rows, objective=manifest.objective,
                metrics=manifest.metrics, verdict=verdict, action=action))
            with conn.transaction():
                dropped = registry.retain(conn, keep)
        except BaseException:
            for table in new.values():
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            raise
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    seconds["total"] = time.perf_counter() - started
    assert verdict is not None  # noqa: S101 (set before the switch)
    return LoadResult(model_version=version, items=len(items), users=len(users), vectors=db.url,
                      catalog=None if catalog is None else catalog.num_rows,
                      purchases=None if purchases is None else purchases.num_rows,
                      artifacts=store.location(name), seconds={k: round(v, 3) for k, v in seconds.items()},
                      promoted=verdict.passed, serving=version if verdict.passed else verdict.serving,
                      gate=verdict.to_json(), dropped=dropped)


def _verdict(conn: Any, metrics: dict[str, Any], tolerance: float, force: bool) -> Verdict:
    """The gate against the serving model (``force``: promoted whatever it says)."""
    now = registry.serving(conn)
    serving = None
    if now is not None:
        serving = (registry.find(conn, now) or {}).get("metrics") or {}  # loaded before the gate: nothing to compare
    verdict = judge(metrics, serving, serving_version=now if serving is not None else None, tolerance=tolerance)
    if force and not verdict.passed:
        return Verdict(True, f"forced (the gate said: {verdict.reason})", tolerance, verdict.serving,
                       verdict.checks, forced=True)
    return verdict


def _drop_leftovers(conn: Any) -> None:
    """Tables left by a load that was killed (we hold the load lock, so none is in use)."""
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND "
                        "tablename ~ '^(item_emb|user_emb|catalog|purchases|customers|recpipe_model)__new_[0-9a-f]+$'").fetchall()
    for (table,) in rows:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def _copy(conn: Any, table: str, **columns: tuple[str, Any]) -> None:
    """Binary COPY of ``column=(postgres type, values)``, all columns the same length."""
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types([t for t, _ in columns.values()])
        for row in zip(*(v for _, v in columns.values()), strict=True):
            copy.write_row(row)


def _attributes(items: Embeddings, attributes: pa.Table | None) -> tuple[list[Any], list[Any]]:
    """Product line and stock per embedded item, None where ``attributes`` does not know it."""
    ids = items.ids.to_pylist()
    if attributes is None:
        return [None] * len(ids), [None] * len(ids)
    known = dict(zip(attributes["id"].to_pylist(), zip(attributes["product_line"].to_pylist(),
                                                        attributes["quantity_in_stock"].to_pylist(), strict=True),
                     strict=True))
    pairs = [known.get(key, (None, None)) for key in ids]
    return [p[0] for p in pairs], [p[1] for p in pairs]


SWITCH_LOCK_TIMEOUT = "200ms"  # below PostgreSQL's deadlock_timeout (1 s): the switch yields first
SWITCH_TRIES_S = 120.0  # how long the switch keeps trying while queries hold the tables


def switching(conn: Any, body: Callable[[], None]) -> None:
    """Run ``body`` in one transaction that gives up waiting for a lock after a moment and is
    tried again. Queries take their table locks one at a time, so a switch that waits for one
    table while holding another can deadlock with them: it gives up before PostgreSQL's
    deadlock detector would cancel a query, then tries again after a pause."""
    import psycopg

    deadline, attempt = time.monotonic() + SWITCH_TRIES_S, 0
    while True:
        attempt += 1
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{SWITCH_LOCK_TIMEOUT}'")
                body()
            return
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() >= deadline:
                raise ServiceError(f"the vector tables stayed busy for {SWITCH_TRIES_S:.0f} s: nothing was "
                                   "switched (what served still serves)",
                                   hint="try again") from None
            time.sleep(min(1.0, 0.02 * 2 ** min(attempt, 6)) * random.random())  # noqa: S311 (jitter)


def _switch_once(conn: Any, new: dict[str, str], *, version: str, artifacts: str, items: int, users: int,
                 catalog: int | None, objective: str, metrics: dict[str, Any], verdict: Verdict,
                 action: str | None = None) -> None:
    """Inside ``switching``'s transaction: the shop's tables replaced, the model's installed,
    and served if the gate passed."""
    model = (schema.ITEMS, schema.USERS, schema.MODEL)
    registry.ensure(conn)
    shop = {t: staged for t, staged in new.items() if t not in model}
    existing = [t for t in shop if has_table(conn, t)]
    if existing:
        conn.execute(f"LOCK TABLE {', '.join(existing)} IN ACCESS EXCLUSIVE MODE")
    for table, staged in shop.items():
        if table in existing:
            conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {staged} RENAME TO {table}")
        names = schema.INDEXES[table]
        conn.execute(f"ALTER INDEX {staged}_pkey RENAME TO {table}_pkey")
        if "line" in names:
            conn.execute(f"ALTER INDEX {staged}_line RENAME TO {names['line']}")
    registry.install(conn, new, version, artifacts=artifacts, objective=objective, items=items, users=users,
                     metrics=metrics, gate=verdict.to_json())
    if verdict.passed:
        action = action or ("first" if verdict.serving is None else "force" if verdict.forced else "gate")
        registry.point(conn, version, action, note=verdict.reason)
    if catalog is not None:  # serving reads the shop again when loaded_at changes
        conn.execute(f"UPDATE {schema.META} SET catalog = %s, loaded_at = now()", (catalog,))


def loaded(db: VectorDatabase) -> dict[str, Any] | None:
    """What is being served, or None if nothing has been loaded."""
    with connect(db) as conn:
        return loaded_on(conn)
