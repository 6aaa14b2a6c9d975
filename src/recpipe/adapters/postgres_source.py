"""PostgreSQL source database (``postgresql://user:pass@host:5432/db``).

PostgreSQL DDL is transactional, so a whole build is one transaction: it commits whole or
leaves nothing. Bulk path: ``COPY … FROM STDIN (FORMAT csv)`` fed with CSV staged by pyarrow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from recpipe.adapters.base import ServerSource, present, refuse_clash
from recpipe.adapters.connectorx_reader import read_arrow
from recpipe.adapters.csv_stage import csv_bytes
from recpipe.contracts.source import TABLE_ORDER, table
from recpipe.errors import ServiceError, require
from recpipe.progress import SILENT, Progress


def _psycopg() -> Any:
    return require("psycopg", "postgres", "A PostgreSQL source")


class PostgresSource(ServerSource):
    dialect = "postgresql"

    ALIASES = ("postgresql", "postgres")
    DRIVER = "postgresql+psycopg"
    EXAMPLE = "postgresql://user:pass@host:5432/classicmodels"

    def connect(self) -> Any:
        psycopg = _psycopg()
        u = self._url
        try:
            params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
                      "dbname": u.database, "connect_timeout": 10}
            params.update({k: v for k, v in u.query.items() if isinstance(v, str)})  # e.g. host=/socket
            return psycopg.connect(**{k: v for k, v in params.items() if v is not None})
        except psycopg.Error as exc:
            raise self.explain(exc) from exc

    def explain(self, exc: BaseException) -> ServiceError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"{self.url} ({self.setting})"
        if "password authentication failed" in text:
            return ServiceError(f"PostgreSQL refused user {self._url.username!r} at {where}: wrong password",
                                hint="fix the credentials in the URL")
        if "does not exist" in text and "database" in text:
            return ServiceError(f"database {self._url.database!r} does not exist at {where}",
                                hint=f'create it: CREATE DATABASE "{self._url.database}"')
        if "Connection refused" in text or "could not connect" in text or "timeout" in text:
            return ServiceError(f"cannot reach PostgreSQL at {where}",
                                hint="is the server running and the host and port right?")
        return ServiceError(f"PostgreSQL error at {where}: {text}")

    def engine(self) -> Engine:
        _psycopg()
        return self._cached_engine(lambda: create_engine(self._url, pool_pre_ping=True))

    def read_arrow(self, query: str, *, schema: pa.Schema | None = None,
                   batch_rows: int = 100_000) -> pa.RecordBatchReader:
        return read_arrow(self._url.set(drivername="postgresql").render_as_string(hide_password=False), query, shown_url=self.url,
                          schema=schema, batch_rows=batch_rows)

    def jdbc(self) -> dict[str, str]:
        u = self._url
        return {"url": f"jdbc:postgresql://{u.host or '127.0.0.1'}:{u.port or 5432}/{u.database}",
                "driver": "org.postgresql.Driver", "user": u.username or "", "password": u.password or ""}

    def existing_tables(self) -> set[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            return {r[0] for r in rows}

    @contextmanager
    def build(self, *, replace: bool, fresh: bool = True, tables: Sequence[str] | None = None
              ) -> Iterator[_PostgresLoader]:
        names = list(tables or TABLE_ORDER)
        psycopg = _psycopg()
        conn = self.connect()
        try:
            existing = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
            clash = refuse_clash(self.url, names, existing, replace)
            doomed = present(TABLE_ORDER, existing) if (fresh and replace) else clash
            for name in reversed(doomed):
                conn.execute(f'DROP TABLE "{name}" CASCADE')
            yield _PostgresLoader(conn)
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            raise self.explain(exc) from exc
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()


class _PostgresLoader:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.dialect = pg_dialect.dialect()

    def create_tables(self, names: Sequence[str], *, indexes: bool = True) -> None:
        """Without ``indexes``, foreign keys wait too: rows may then arrive in any order."""
        for name in names:
            ddl = CreateTable(table(name), include_foreign_key_constraints=None if indexes else [])
            self.execute(str(ddl.compile(dialect=self.dialect)))
        if indexes:
            self.create_indexes(names, foreign_keys=False)

    def create_indexes(self, names: Sequence[str], *, foreign_keys: bool = True) -> None:
        for name in names:
            for index in sorted(table(name).indexes, key=lambda i: i.name or ""):
                self.execute(str(CreateIndex(index).compile(dialect=self.dialect)))
            if foreign_keys:
                for fk in sorted(table(name).foreign_key_constraints, key=lambda c: list(c.column_keys)):
                    self.execute(str(AddConstraint(fk).compile(dialect=self.dialect)))

    def bulk_insert(self, name: str, data: pa.Table, progress: Progress = SILENT) -> None:
        columns = ", ".join(f'"{c}"' for c in data.column_names)
        sql = f'COPY "{name}" ({columns}) FROM STDIN (FORMAT csv, NULL \'NULL\')'
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            for batch in data.to_batches(max_chunksize=200_000):
                copy.write(csv_bytes(batch))
                progress.advance(name, batch.num_rows)

    def execute(self, statement: str, *, creates: str | None = None) -> None:
        self.conn.execute(statement)

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(statement).fetchall())
