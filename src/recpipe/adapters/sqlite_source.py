"""SQLite source database: the embedded default (a file under RECPIPE_HOME)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from recpipe.adapters.base import CachedEngine, refuse_clash
from recpipe.contracts.source import TABLE_ORDER, table
from recpipe.errors import ConfigError, InputError, ServiceError
from recpipe.progress import SILENT, Progress


class SQLiteSource(CachedEngine):
    dialect = "sqlite"

    def __init__(self, url: str, *, setting: str = "RECPIPE_SOURCE_URL") -> None:
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ConfigError(f"{setting}={url!r}: the SQLite source must be a file",
                              hint="use sqlite:///path/to/source.db")
        self.path = Path(database).expanduser().resolve()
        self.url = f"sqlite:///{self.path}"

    def engine(self) -> Engine:
        if not self.path.is_file():
            raise ServiceError(f"source database {self.path} does not exist",
                               hint="create it with `recpipe source init` or `recpipe source load-dump`")
        return self._cached_engine(lambda: create_engine(self.url))

    def read_arrow(self, query: str, *, schema: pa.Schema | None = None,
                   batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """SQLite columns have no fixed type, so batches are built to ``schema`` (needed here)."""
        if schema is None:
            raise ValueError("SQLiteSource.read_arrow needs the schema of the result")
        if not self.path.is_file():
            raise ServiceError(f"source database {self.path} does not exist",
                               hint="create it with `recpipe source init` or `recpipe source load-dump`")
        # the consumer (DuckDB) may pull batches from its own thread, one at a time
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            cur = conn.execute(query)
        except sqlite3.Error as exc:
            conn.close()
            raise ServiceError(f"reading from {self.url} failed: {exc}") from exc

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while rows := cur.fetchmany(batch_rows):
                    columns = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                        schema=schema)
            finally:
                conn.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def jdbc(self) -> dict[str, str]:
        return {"url": f"jdbc:sqlite:{self.path}", "driver": "org.sqlite.JDBC"}

    def existing_tables(self) -> set[str]:
        if not self.path.is_file():
            return set()
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    @contextmanager
    def build(self, *, replace: bool, fresh: bool = True, tables: Sequence[str] | None = None
              ) -> Iterator[_SQLiteLoader]:
        names = list(tables or TABLE_ORDER)
        clash = refuse_clash(str(self.path), names, self.existing_tables(), replace)
        if fresh:
            yield from self._build_new_file()
        else:
            yield from self._build_in_place(clash)

    def _build_new_file(self) -> Iterator[_SQLiteLoader]:
        """A fresh database is written to a temporary file and renamed over the old one."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the directory of {self.path}: {exc.strerror}",
                             hint="choose a writable RECPIPE_SOURCE_URL or RECPIPE_HOME") from exc
        tmp = self.path.with_name(f".{self.path.name}.building-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        # A throw-away file needs no journal: on failure it is simply deleted.
        conn = self._connect(tmp, "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                             "PRAGMA cache_size=-262144")
        try:
            with self._explained():
                yield _SQLiteLoader(conn)
                conn.adbc_connection.commit()
            conn.close()
            os.replace(tmp, self.path)
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise

    def _build_in_place(self, clash: list[str]) -> Iterator[_SQLiteLoader]:
        """Adding tables to an existing database: one transaction (SQLite DDL is transactional)."""
        conn = self._connect(self.path)
        try:
            with self._explained():
                loader = _SQLiteLoader(conn)
                for name in reversed(clash):
                    loader.execute(f'DROP TABLE "{name}"')
                yield loader
                conn.adbc_connection.commit()
        except BaseException:
            conn.adbc_connection.rollback()
            raise
        finally:
            conn.close()

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """SQLite's complaint as one line naming the file; the build is then undone."""
        import adbc_driver_sqlite.dbapi as adbc

        try:
            yield
        except adbc.Error as exc:
            said = str(exc).splitlines()[0].removeprefix("INVALID_ARGUMENT: ").strip()
            raise InputError(f"writing source database {self.path} failed: {said}",
                             hint="nothing was changed; fix the input and run again") from exc

    def _connect(self, path: Path, *pragmas: str) -> Any:
        """An ADBC connection (Arrow-native bulk ingest) inside one transaction."""
        import adbc_driver_sqlite.dbapi as adbc

        try:
            conn = adbc.connect(str(path), autocommit=True)
            with conn.cursor() as cur:
                for pragma in pragmas:
                    cur.execute(pragma)
                    if cur.description:
                        cur.fetchall()
            conn.adbc_connection.set_options(**{"adbc.connection.autocommit": "false"})
            return conn
        except adbc.Error as exc:
            raise InputError(f"cannot open SQLite file {path}: {exc}",
                             hint="check the path and its permissions") from exc


class _SQLiteLoader:
    """Loads through ADBC: Arrow tables go into SQLite without Python row objects."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        self.dialect = sqlite_dialect.dialect()

    def create_tables(self, names: Sequence[str], *, indexes: bool = True) -> None:
        for name in names:
            self.execute(str(CreateTable(table(name)).compile(dialect=self.dialect)))
        if indexes:
            self.create_indexes(names)

    def create_indexes(self, names: Sequence[str]) -> None:
        for name in names:
            for index in sorted(table(name).indexes, key=lambda i: i.name or ""):
                self.execute(str(CreateIndex(index).compile(dialect=self.dialect)))

    def bulk_insert(self, name: str, data: pa.Table, progress: Progress = SILENT) -> None:
        for batch in data.to_batches(max_chunksize=250_000):
            self.cur.adbc_ingest(name, batch, mode="append")
            progress.advance(name, batch.num_rows)

    def execute(self, statement: str, *, creates: str | None = None) -> None:
        self.cur.execute(statement)
        if self.cur.description:
            self.cur.fetchall()

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        self.cur.execute(statement)
        return self.cur.fetchall()
