"""The embedded stream: a durable log in SQLite (WAL mode) under ``$RECPIPE_HOME/stream``.

Kinesis's semantics, on one machine: a record goes to the shard that owns the MD5 of its
partition key (the 128-bit hash space split evenly, as a new Kinesis stream splits it); each
shard numbers its records in order; several producer processes may append at once (SQLite's
write lock serialises them, ``BEGIN IMMEDIATE`` gives each batch its numbers atomically); records
older than the retention are trimmed. URL: a directory, with ``?shards=N`` (default 4, fixed
when the log is created) and ``?retention_hours=H`` (default 24).
"""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from recpipe.adapters.base import Shard, StreamRecord
from recpipe.contracts.limits import KINESIS_MAX_RECORD_BYTES
from recpipe.errors import ConfigError, InputError, ServiceError

DEFAULT_SHARDS = 4
DEFAULT_RETENTION_HOURS = 24.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    shard INTEGER NOT NULL, seq INTEGER NOT NULL, partition_key TEXT NOT NULL, data BLOB NOT NULL,
    arrival_ms INTEGER NOT NULL, PRIMARY KEY (shard, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (shard INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_arrival ON records (arrival_ms);
"""
TRIM_EVERY_MS = 10_000  # records past the retention are deleted at most this often per process


def shard_of(partition_key: str, shards: int) -> int:
    """The shard owning the key's MD5 when the 128-bit hash space is split evenly."""
    return (int.from_bytes(hashlib.md5(partition_key.encode(), usedforsecurity=False).digest(), "big") * shards) >> 128


class LocalStream:
    def __init__(self, url: str, *, setting: str = "RECPIPE_STREAM_URL") -> None:
        parts = urlsplit(url.removeprefix("file://") if url.startswith("file://") else url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"shards", "retention_hours"}
        if unknown:
            raise ConfigError(f"{setting}={url!r}: unknown option(s) {', '.join(sorted(unknown))}",
                              hint="the embedded stream takes ?shards=N&retention_hours=H")
        try:
            self.wanted_shards = int(query.get("shards", DEFAULT_SHARDS))
            self.retention_ms = int(float(query.get("retention_hours", DEFAULT_RETENTION_HOURS)) * 3_600_000)
        except ValueError:
            raise ConfigError(f"{setting}={url!r}: shards and retention_hours must be numbers",
                              hint="e.g. ./.recpipe/stream?shards=4&retention_hours=24") from None
        if not 1 <= self.wanted_shards <= 1024 or self.retention_ms <= 0:
            raise ConfigError(f"{setting}={url!r}: shards must be 1-1024 and retention_hours above 0")
        self.root = Path(parts.path).expanduser().resolve()
        self.url = str(self.root)
        self.name = self.root.name or "stream"
        self.setting = setting
        self._local = threading.local()
        self._count: int | None = None
        self._trimmed_ms = 0

    # -- connection ------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.root / "log.sqlite", timeout=30, isolation_level=None)
                # Switching to WAL does not wait for a busy database: connections opening at once
                # (threads, producer processes) take turns through a file lock for the set-up.
                with open(self.root / "log.lock", "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript(_SCHEMA)
                conn.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint of the WAL
            except (OSError, sqlite3.Error) as exc:
                raise ServiceError(f"cannot open the stream log in {self.root}: {exc}",
                                   hint=f"check {self.setting} and that the directory is writable") from exc
            self._local.conn = conn
        return conn

    @property
    def shard_count(self) -> int:
        if self._count is None:
            db = self._db()
            db.execute("INSERT OR IGNORE INTO meta VALUES ('shards', ?)", (str(self.wanted_shards),))
            self._count = int(db.execute("SELECT value FROM meta WHERE key = 'shards'").fetchone()[0])
        return self._count

    def identity(self) -> str:
        """This log's own id, made when the log is created: a log deleted (or emptied) and made
        again has another, so a reader's saved positions are never applied to it."""
        db = self._db()
        db.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", (uuid.uuid4().hex,))
        made = db.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()[0]
        return f"{self.url}#{made}"

    # -- the Stream protocol ---------------------------------------------------------------
    def put(self, records: Sequence[tuple[str, bytes]]) -> list[str]:
        for key, data in records:
            if not key or len(key) > 256:
                raise InputError(f"a partition key must be 1-256 characters (got {len(key)})")
            if len(data) + len(key.encode()) > KINESIS_MAX_RECORD_BYTES:
                raise InputError(f"a record of {len(data):,} bytes is larger than a stream record may be "
                                 f"({KINESIS_MAX_RECORD_BYTES:,} with its key)")
        n, db = self.shard_count, self._db()
        now = int(time.time() * 1000)
        out: list[str] = []
        trim = now - self._trimmed_ms >= TRIM_EVERY_MS
        try:
            self._append(db, records, n, now, trim, out)
        except sqlite3.Error as exc:
            raise ServiceError(f"cannot append to the stream log in {self.root}: {exc}",
                               hint="free space on its disk (nothing of this batch was put), "
                                    f"or point {self.setting} elsewhere") from exc
        if trim:
            self._trimmed_ms = now
        return out

    def _append(self, db: sqlite3.Connection, records: Sequence[tuple[str, bytes]], n: int, now: int,
                trim: bool, out: list[str]) -> None:
        """One transaction: the batch gets its numbers and lands whole, or not at all."""
        db.execute("BEGIN IMMEDIATE")
        try:
            heads = dict(db.execute("SELECT shard, last_seq FROM heads").fetchall())
            rows = []
            for key, data in records:
                shard = shard_of(key, n)
                seq = heads.get(shard, 0) + 1
                heads[shard] = seq
                rows.append((shard, seq, key, data, now))
                out.append(str(seq))
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?)", heads.items())
            if trim:  # by the arrival index, not a scan of the log on every put
                db.execute("DELETE FROM records WHERE arrival_ms < ?", (now - self.retention_ms,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT (a full disk) has already rolled back
                db.execute("ROLLBACK")
            raise

    def shards(self) -> list[Shard]:
        return [Shard(str(i)) for i in range(self.shard_count)]

    def read(self, shard: str, after: str | None, limit: int) -> tuple[list[StreamRecord], bool]:
        oldest = int(time.time() * 1000) - self.retention_ms  # past the retention even if not yet deleted
        rows = self._db().execute(
            "SELECT seq, partition_key, data, arrival_ms FROM records WHERE shard = ? AND seq > ? "
            "AND arrival_ms >= ? ORDER BY seq LIMIT ?", (int(shard), int(after or 0), oldest, limit)).fetchall()
        return [StreamRecord(shard, str(seq), key, bytes(data), arrival) for seq, key, data, arrival in rows], False

    def latest(self) -> dict[str, str]:
        """The last sequence number of each shard (for lag)."""
        return {str(s): str(q) for s, q in self._db().execute("SELECT shard, last_seq FROM heads")}
