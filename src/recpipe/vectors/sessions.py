"""The session store: what each customer and each session did lately, in the vector database.

The streaming transformation records every event it enriches (``record``); every serving path
reads it (``recent``). Per owner — a customer number, or a session id — the store keeps the
latest ``MAX_RECENT`` products with their kind (``browse``/``cart``) and time; a product seen
again moves to the front. A product stays recent for ``RECENT_TTL_S`` after it was recorded
(not after its event time: replayed old events are still what the shopper did last); expired
rows are ignored at once and deleted by the next writer, at most once every five minutes.

Writers may run at once (Firehose retries, several transformations): each takes the advisory
locks of the owners it writes, in one order, so two writers never deadlock, and an upsert is
idempotent (the same event recorded twice leaves the same rows).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from recpipe.contracts import vectors as schema
from recpipe.contracts.events import Activity, Event
from recpipe.contracts.limits import MAX_RECENT, RECENT_TTL_S

log = logging.getLogger("recpipe.vectors.sessions")
OWNERS = ("customer", "session")
EXPIRE_EVERY_S = 300.0  # reads ignore expired rows at once; this only bounds the table
_STEP = dt.timedelta(microseconds=1)  # orders the products of one event's history
_expired_at = 0.0
_expire_lock = threading.Lock()


@dataclass(frozen=True)
class Row:
    owner_kind: str
    owner: str
    product_code: str
    kind: str
    at: dt.datetime
    customer_number: int | None
    clicked: bool = False  # the event's own product (the last of its history), not one it repeats


class Recorder:
    """What one writer has recorded: an event repeats its session's history, so only its own
    product, and products new to the writer or whose kind changed, are written again (a batch
    of 500 events wrote ~4,000 rows, now ~600: bench/stream.py). Bounded; a new writer starts
    empty and writes each session's history once.

    It also counts each owner's products it wrote: only an owner it has written more than
    ``MAX_RECENT`` products of is pruned with the write (pruning every owner of a batch read
    all their rows, half the write's cost). An owner that other writers, or an earlier one,
    wrote too may hold more until the sweep that comes with the expiry; reads take the newest
    ``MAX_RECENT`` either way."""

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self._kinds: dict[tuple[str, str, str], str] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def fresh(self, rows: Sequence[Row]) -> list[Row]:
        return [r for r in rows if r.clicked or self._kinds.get((r.owner_kind, r.owner, r.product_code)) != r.kind]

    def crowded(self, rows: Sequence[Row]) -> list[tuple[str, str]]:
        """The owners of ``rows`` that may now hold more than ``MAX_RECENT`` products."""
        new: dict[tuple[str, str], int] = {}
        for r in rows:
            if (r.owner_kind, r.owner, r.product_code) not in self._kinds:
                new[(r.owner_kind, r.owner)] = new.get((r.owner_kind, r.owner), 0) + 1
        return sorted(o for o, n in new.items() if self._counts.get(o, 0) + n > MAX_RECENT)

    def done(self, rows: Sequence[Row]) -> None:
        if len(self._kinds) > self.limit:
            self._kinds.clear()
            self._counts = {o: MAX_RECENT + 1 for o in self._counts}  # forgotten: prune them with their next write
        for r in rows:
            key = (r.owner_kind, r.owner, r.product_code)
            if key not in self._kinds:
                self._counts[(r.owner_kind, r.owner)] = self._counts.get((r.owner_kind, r.owner), 0) + 1
            self._kinds[key] = r.kind


def rows_of(events: Iterable[Event]) -> list[Row]:
    """What a batch of events says, one row per owner and product (the latest wins), sorted by owner."""
    latest: dict[tuple[str, str, str], tuple[dt.datetime, str, int | None, bool]] = {}
    for e in events:
        history = e.browse_history[-MAX_RECENT:]
        owners = [("session", e.session_id)]
        if e.customer_number is not None:
            owners.append(("customer", str(e.customer_number)))
        last = len(history) - 1
        for j, b in enumerate(history):
            at = e.event_time - (last - j) * _STEP
            kind = "cart" if b.in_shopping_cart else "browse"
            for owner_kind, owner in owners:
                key = (owner_kind, owner, b.product_code)
                seen = latest.get(key)
                if seen is None or at >= seen[0]:
                    latest[key] = (at, kind, e.customer_number, j == last)
    return [Row(*key, kind, at, customer, clicked)
            for key, (at, kind, customer, clicked) in sorted(latest.items())]  # keys are unique


def ensure(conn: Any) -> None:
    """Create the store if it is missing (two first writers at once: one creates, one waits)."""
    from psycopg import errors

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("create", schema.RECENT),))
        with contextlib.suppress(errors.UniqueViolation):  # created by a writer that did not take the lock
            conn.execute(schema.CREATE_RECENT)


def record(conn: Any, rows: Sequence[Row], *, prune: Sequence[tuple[str, str]] | None = None) -> int:
    """Upsert ``rows`` (from ``rows_of``), then keep the newest ``MAX_RECENT`` of each owner in
    ``prune`` (default: every owner of ``rows``; the others wait for the sweep, ``expire``)."""
    from psycopg import errors

    if not rows:
        return 0
    owners = sorted({(r.owner_kind, r.owner) for r in rows}) if prune is None else list(prune)
    try:
        _record(conn, rows, owners)
    except errors.UndefinedTable:
        ensure(conn)
        _record(conn, rows, owners)
    _maybe_expire(conn)
    return len(rows)


def _record(conn: Any, rows: Sequence[Row], prune: Sequence[tuple[str, str]]) -> None:
    keys = sorted({_lock_key(r.owner_kind, r.owner) for r in rows})
    # the rows as one JSON text: psycopg's array dumping of six columns cost more Python time
    # than the upsert took in PostgreSQL (bench/stream.py)
    payload = json.dumps([[r.owner_kind, r.owner, r.product_code, r.kind, r.at.isoformat(), r.customer_number]
                          for r in rows], ensure_ascii=False)
    with conn.transaction():
        # a lost commit after a crash loses a moment of recent activity, never a record: the
        # store is not the delivery's record of what happened
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) k ORDER BY k", (keys,))
        conn.execute(
            f"INSERT INTO {schema.RECENT} AS r (owner_kind, owner, product_code, kind, at, customer_number) "
            "SELECT x->>0, x->>1, x->>2, x->>3, (x->>4)::timestamptz, (x->>5)::int "
            "FROM json_array_elements(%(rows)s::json) x ON CONFLICT (owner_kind, owner, product_code) DO UPDATE SET "
            "kind = CASE WHEN excluded.at >= r.at THEN excluded.kind ELSE r.kind END, "
            "at = greatest(r.at, excluded.at), recorded_at = now(), "
            "customer_number = coalesce(excluded.customer_number, r.customer_number)", {"rows": payload})
        if prune:
            _prune(conn, "WHERE (owner_kind, owner) IN (SELECT * FROM unnest(%(kinds)s::varchar[], %(owners)s::text[]))",
                   {"kinds": [o[0] for o in prune], "owners": [o[1] for o in prune]})


def _prune(conn: Any, where: str, params: dict[str, Any]) -> int:
    """Delete all but the newest ``MAX_RECENT`` of each owner the ``where`` picks. Rows a
    writer holds are skipped, not waited for (the sweep takes no owner's lock: waiting could
    deadlock with a writer); the next prune takes them."""
    return int(conn.execute(
        f"DELETE FROM {schema.RECENT} WHERE ctid IN (SELECT r.ctid FROM {schema.RECENT} r JOIN "
        f"(SELECT owner_kind, owner, product_code, row_number() OVER (PARTITION BY owner_kind, owner "
        f"ORDER BY at DESC, product_code) AS n FROM {schema.RECENT} {where}) old ON r.owner_kind = old.owner_kind "
        "AND r.owner = old.owner AND r.product_code = old.product_code WHERE old.n > %(keep)s "
        "FOR UPDATE OF r SKIP LOCKED)", {**params, "keep": MAX_RECENT}).rowcount)


def recent(conn: Any, owner_kind: str, owner: str | int, limit: int = MAX_RECENT
           ) -> tuple[list[Activity], int | None]:
    """An owner's recent products, oldest first, and (for a session) its customer number."""
    from psycopg import errors

    try:
        rows = conn.execute(
            f"SELECT product_code, kind, customer_number FROM {schema.RECENT} WHERE owner_kind = %s AND owner = %s "
            "AND recorded_at > now() - make_interval(secs => %s) ORDER BY at DESC, product_code LIMIT %s",
            (owner_kind, str(owner), RECENT_TTL_S[owner_kind], limit), prepare=True).fetchall()
    except errors.UndefinedTable:
        return [], None
    except errors.InsufficientPrivilege as exc:  # serving goes on without the session: said, not hidden
        log.warning("the session store cannot be read: %s; grant this database user SELECT on %s",
                    str(exc).strip().splitlines()[0], schema.RECENT)
        return [], None
    customer = next((r[2] for r in rows if r[2] is not None), None)
    return [Activity(r[0], r[1]) for r in reversed(rows)], customer


def expire(conn: Any) -> int:
    """Delete what has expired, and each owner's products beyond ``MAX_RECENT`` (the sweep);
    how many rows went."""
    from psycopg import errors

    try:
        gone = sum(conn.execute(f"DELETE FROM {schema.RECENT} WHERE ctid IN (SELECT ctid FROM {schema.RECENT} "
                                "WHERE owner_kind = %s AND recorded_at <= now() - make_interval(secs => %s) "
                                "FOR UPDATE SKIP LOCKED)", (kind, ttl)).rowcount
                   for kind, ttl in RECENT_TTL_S.items())
        return gone + _prune(conn, "", {})
    except errors.UndefinedTable:
        return 0


def _maybe_expire(conn: Any) -> None:
    global _expired_at
    now = time.monotonic()
    if now - _expired_at < EXPIRE_EVERY_S or not _expire_lock.acquire(blocking=False):
        return
    try:
        _expired_at = now
        expire(conn)
    finally:
        _expire_lock.release()


def _lock_key(owner_kind: str, owner: str) -> int:
    """A signed 64-bit advisory-lock key per owner."""
    digest = hashlib.blake2b(f"recpipe:{owner_kind}:{owner}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
