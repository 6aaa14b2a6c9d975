"""The small Protocols that stage code talks to, and what their adapters share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from recpipe.adapters.staged import Staged
from recpipe.contracts.dataset import MANIFEST
from recpipe.progress import SILENT, Progress

if TYPE_CHECKING:  # serving (the Lambdas) imports this module: no Arrow or SQLAlchemy at import
    from pathlib import Path

    import pyarrow as pa
    from sqlalchemy.engine import URL, Engine


class Loader(Protocol):
    """Writes into a database that is being built; handed out by ``SourceDatabase.build``."""

    def create_tables(self, names: Sequence[str], *, indexes: bool = True) -> None: ...

    def create_indexes(self, names: Sequence[str]) -> None: ...

    def bulk_insert(self, name: str, table: pa.Table, progress: Progress = SILENT) -> None:
        """Append ``table``'s rows; ``progress.advance(name, rows)`` as batches land."""

    def execute(self, statement: str, *, creates: str | None = None) -> None:
        """Run one statement; ``creates`` names the table it creates (undone on failure)."""
        ...

    def query(self, statement: str) -> list[tuple[Any, ...]]: ...


class SourceDatabase(Protocol):
    """A source database: SQLite, MySQL/MariaDB or PostgreSQL."""

    url: str  # masked: safe to print
    dialect: str

    def engine(self) -> Engine: ...

    def existing_tables(self) -> set[str]: ...

    def read_arrow(self, query: str, *, schema: pa.Schema | None = None,
                   batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches of ``schema`` (bounded memory)."""
        ...

    def jdbc(self) -> dict[str, str]:
        """Spark JDBC options for this database: url, driver, and user/password if any."""
        ...

    def build(self, *, replace: bool, fresh: bool = True, tables: Sequence[str] | None = None
              ) -> AbstractContextManager[Loader]:
        """Write atomically: on success the result appears whole; on failure nothing is left.

        ``tables`` names the tables this build creates; if any exists already the build
        refuses unless ``replace``. ``fresh`` builds a new classicmodels database (replacing
        every classicmodels table); otherwise the tables are added to the existing one.
        """
        ...

    def close(self) -> None: ...


def present(names: Sequence[str], existing: set[str]) -> list[str]:
    """Those of ``names`` that exist, compared case-insensitively (MySQL on Windows/macOS)."""
    lowered = {n.lower() for n in existing}
    return [n for n in names if n.lower() in lowered]


def refuse_clash(where: str, names: Sequence[str], existing: set[str], replace: bool) -> list[str]:
    """The tables of ``names`` that exist; an error unless the caller may replace them."""
    clash = present(names, existing)
    if clash and not replace:
        from recpipe.errors import InputError

        raise InputError(f"source database {where} already has table(s) {', '.join(clash)}",
                         hint="pass --replace to overwrite them, or point RECPIPE_SOURCE_URL elsewhere")
    return clash


class Lake(Protocol):
    """Where datasets are published: a directory or an S3 prefix."""

    url: str  # safe to print

    def check_writable(self) -> None:
        """Fail early, naming the path or bucket, if nothing can be published here."""
        ...

    def stage(self, name: str, *, remote: bool = False) -> AbstractContextManager[Staged]:
        """A fresh staging location for dataset ``name``, discarded on exit: a local directory,
        or with ``remote`` one the engine's cluster can write to (S3)."""
        ...

    def publish(self, name: str, staged: Staged, *, manifest: str = MANIFEST) -> None:
        """Make ``staged`` the dataset ``name``: readers see the old or the new one, not a mix.
        ``manifest`` (a relative path) is written last where writes are not atomic (S3)."""
        ...

    def dataset(self, name: str, files: list[str], *, partitioning: Any = None, schema: Any = None) -> Any:
        """``files`` of dataset ``name`` (paths as ``list_files`` gives them) as a
        ``pyarrow.dataset.Dataset``, without listing the rest. Arrow keeps every file's metadata
        for as long as the dataset lives: read hundreds of thousands of files a few thousand at
        a time (``adapters.scan``)."""
        ...

    def read_json(self, relpath: str) -> dict[str, Any] | None: ...

    def read_bytes(self, relpath: str) -> bytes | None:
        """A file's bytes, or None if there is no such file."""
        ...

    def write_bytes(self, relpath: str, data: bytes) -> None:
        """Write one file whole (readers never see part of it)."""
        ...

    def write_file(self, relpath: str, source: Path) -> None:
        """Write the local file ``source`` whole as ``relpath``, streamed (a model's 230 MB of
        customer vectors never sit in memory at once)."""
        ...

    def list_files(self, prefix: str = "") -> list[str]:
        """Relative paths of the files under ``prefix``, sorted (hidden files left out)."""
        ...

    def hold(self, relpath: str, what: str) -> AbstractContextManager[None]:
        """Hold ``relpath`` as a lock while ``what`` runs; another holder is refused at once
        (an InputError naming it)."""
        ...

    def location(self, name: str) -> str:
        """Where readers find dataset ``name`` (a path or an s3:// URL)."""
        ...


@dataclass(frozen=True)
class StreamRecord:
    shard: str
    sequence: str  # increases within a shard (compare with ``int()``)
    partition_key: str
    data: bytes
    arrival_ms: int  # when the stream accepted it (approximateArrivalTimestamp)


@dataclass(frozen=True)
class Shard:
    id: str
    parents: tuple[str, ...] = ()  # read every parent to its end before this shard (resharding)
    closed: bool = False  # no new records: once read to its end, it is done


class Stream(Protocol):
    """An ordered, sharded log of records: the embedded one or Kinesis. Records with the same
    partition key go to the same shard, in order. Who reads keeps their own positions."""

    url: str  # safe to print
    name: str

    def put(self, records: Sequence[tuple[str, bytes]]) -> list[str]:
        """Append ``(partition key, data)`` records, all of them (retrying what the backend
        refuses); return their sequence numbers in order."""
        ...

    def identity(self) -> str:
        """What tells this stream from another made later at the same URL (a deleted and
        re-created log or Kinesis stream): readers keep it beside their positions."""
        ...

    def shards(self) -> list[Shard]:
        """Every shard still holding records, parents before children."""
        ...

    def read(self, shard: str, after: str | None, limit: int) -> tuple[list[StreamRecord], bool]:
        """Up to ``limit`` records of ``shard`` after sequence ``after`` (None: the oldest
        retained), and whether the shard is closed and read to its end."""
        ...

    def latest(self) -> dict[str, str]:
        """The last sequence number of each shard, where the backend says it cheaply ({} where
        it does not: a lag is then unknown)."""
        ...


class VectorDatabase(Protocol):
    """PostgreSQL with pgvector: an embedded server or one at a URL, the same from here on."""

    url: str  # safe to print

    def conninfo(self) -> str:
        """A libpq connection URI (starting the embedded server first if it is not running)."""
        ...

    def stop(self) -> bool:
        """Stop the embedded server if this process may (False for a real server)."""
        ...


def server_url(url: str, setting: str, *, aliases: tuple[str, ...], driver: str, example: str) -> URL:
    """Parse a server database URL: known driver aliases become ``driver``; a database is required."""
    from sqlalchemy.engine import make_url

    from recpipe.config import mask_url
    from recpipe.errors import ConfigError

    parsed = make_url(url)
    if parsed.drivername not in (*aliases, driver):
        raise ConfigError(f"{setting}={mask_url(url)!r}: driver {parsed.drivername!r} is not supported",
                          hint=f"use {example}")
    if not parsed.database:
        raise ConfigError(f"{setting}={mask_url(url)!r} names no database",
                          hint=f"add it: {example}")
    return parsed.set(drivername=driver)


class CachedEngine:
    """For source adapters: a SQLAlchemy engine made on first use, disposed by ``close()``."""

    _engine: Engine | None = None

    def _cached_engine(self, make: Callable[[], Engine]) -> Engine:
        if self._engine is None:
            self._engine = make()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class ServerSource(CachedEngine):
    """For source adapters of a database server: the URL parsed once (``server_url``), kept
    with its password for connecting and shown without it."""

    ALIASES: tuple[str, ...] = ()
    DRIVER = ""
    EXAMPLE = ""

    def __init__(self, url: str, *, setting: str = "RECPIPE_SOURCE_URL") -> None:
        parsed = server_url(url, setting, aliases=self.ALIASES, driver=self.DRIVER, example=self.EXAMPLE)
        self._url: URL = parsed
        self.url = parsed.render_as_string(hide_password=True)
        self.setting = setting
