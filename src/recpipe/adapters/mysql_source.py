"""MySQL / MariaDB source database (``mysql+pymysql://user:pass@host:3306/db``).

Bulk path: ``LOAD DATA LOCAL INFILE`` from CSV staged by pyarrow. DDL in MySQL commits by
itself, so a build is made atomic by loading every row in one transaction and dropping the
tables it created if anything fails: a failed build leaves no table behind (a failed
``--replace`` leaves the classicmodels tables absent, never half-filled).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.schema import AddConstraint, CreateTable

from recpipe.adapters.base import ServerSource, present, refuse_clash
from recpipe.adapters.connectorx_reader import read_arrow
from recpipe.adapters.csv_stage import write_csv_file
from recpipe.contracts.source import TABLE_ORDER, table
from recpipe.errors import InputError, ServiceError, require
from recpipe.progress import SILENT, Progress

CHUNK_ROWS = 500_000


def _pymysql() -> Any:
    return require("pymysql", "mysql", "A MySQL/MariaDB source")


class MySQLSource(ServerSource):
    dialect = "mysql"

    ALIASES = ("mysql", "mariadb", "mariadb+pymysql")
    DRIVER = "mysql+pymysql"
    EXAMPLE = "mysql+pymysql://user:pass@host:3306/classicmodels"

    # --- connections ------------------------------------------------------------------------

    def connect(self) -> Any:
        pymysql = _pymysql()
        u = self._url
        try:
            return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username,
                                   password=u.password or "", database=u.database, charset="utf8mb4",
                                   local_infile=True, autocommit=False, connect_timeout=10)
        except pymysql.err.MySQLError as exc:
            raise self.explain(exc) from exc

    def engine(self) -> Engine:
        _pymysql()
        return self._cached_engine(lambda: create_engine(
            self._url.update_query_dict({"charset": "utf8mb4"}), pool_pre_ping=True))

    def explain(self, exc: BaseException) -> ServiceError:
        """A one-line error for what a MySQL server said, naming the setting and the fix."""
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        where = f"{self.url} ({self.setting})"
        if code in (2003, 2005, 2013):
            return ServiceError(f"cannot reach MySQL/MariaDB at {where}",
                                hint="is the server running and the host and port right?")
        if code == 1045:
            return ServiceError(f"MySQL/MariaDB refused user {self._url.username!r} at {where}: "
                                "wrong user or password", hint="fix the credentials in the URL")
        if code == 1049:
            return ServiceError(f"database {self._url.database!r} does not exist at {where}",
                                hint=f"create it: CREATE DATABASE `{self._url.database}` CHARACTER SET utf8mb4")
        message = exc.args[1] if len(exc.args) > 1 else str(exc)
        return ServiceError(f"MySQL/MariaDB error at {where}: {message}")

    def read_arrow(self, query: str, *, schema: pa.Schema | None = None,
                   batch_rows: int = 100_000) -> pa.RecordBatchReader:
        return read_arrow(self._url.set(drivername="mysql").render_as_string(hide_password=False), query, shown_url=self.url,
                          schema=schema, batch_rows=batch_rows)

    jdbc_driver = "org.mariadb.jdbc.Driver"  # Debian's libmariadb-java; the Glue job sets Connector/J

    def jdbc(self) -> dict[str, str]:
        u = self._url
        return {"url": f"jdbc:mysql://{u.host or '127.0.0.1'}:{u.port or 3306}/{u.database}",
                "driver": self.jdbc_driver, "user": u.username or "", "password": u.password or ""}

    def existing_tables(self) -> set[str]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                return {r[0] for r in cur.fetchall()}
        finally:
            conn.close()

    # --- building ---------------------------------------------------------------------------

    @contextmanager
    def build(self, *, replace: bool, fresh: bool = True, tables: Sequence[str] | None = None
              ) -> Iterator[_MySQLLoader]:
        names = list(tables or TABLE_ORDER)
        pymysql = _pymysql()
        conn = self.connect()
        loader = _MySQLLoader(conn, self)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                existing = {r[0] for r in cur.fetchall()}
            clash = refuse_clash(self.url, names, existing, replace)
            loader.execute("SET SESSION foreign_key_checks = 0")
            loader.execute("SET SESSION unique_checks = 0")
            doomed = present(TABLE_ORDER, existing) if (fresh and replace) else clash
            for name in reversed(doomed):
                loader.execute(f"DROP TABLE `{name}`")
            yield loader
            conn.commit()
        except BaseException as exc:
            try:
                conn.rollback()
                for name in reversed(loader.created):
                    loader.execute(f"DROP TABLE IF EXISTS `{name}`")
            except pymysql.err.MySQLError:
                pass  # the original error is the one to report
            if isinstance(exc, pymysql.err.MySQLError):
                raise self.explain(exc) from exc
            raise
        finally:
            conn.close()


class _MySQLLoader:
    def __init__(self, conn: Any, source: MySQLSource) -> None:
        self.conn = conn
        self.source = source
        self.created: list[str] = []
        self._pending: list[str] = []  # created without their secondary and foreign keys
        self.dialect = mysql_dialect.dialect()

    def create_tables(self, names: Sequence[str], *, indexes: bool = True) -> None:
        """Without ``indexes`` only primary keys exist while rows arrive; ``create_indexes``
        then adds the secondary keys and foreign keys in one ALTER per table (sorted index
        builds beat row-by-row index maintenance by about a quarter on InnoDB)."""
        for name in names:
            ddl = str(CreateTable(table(name), include_foreign_key_constraints=None if indexes else [])
                      .compile(dialect=self.dialect))
            if indexes:
                keys = [f"KEY {k}" for k in self._keys(name)]
                head, tail = ddl.rstrip().rsplit(")", 1)
                ddl = head.rstrip() + "".join(f",\n\t{k}" for k in keys) + "\n)" + tail
            collation = self._parent_collation(name)
            if collation:  # a foreign key needs the same character set as the table it names
                ddl = ddl.replace("CHARSET=utf8mb4", f"CHARSET={collation.split('_')[0]} COLLATE={collation}")
            self.execute(ddl, creates=name)
            if not indexes:
                self._pending.append(name)

    def create_indexes(self, names: Sequence[str]) -> None:
        for name in [n for n in names if n in self._pending]:
            adds = [f"ADD KEY {k}" for k in self._keys(name)]
            adds += [str(AddConstraint(fk).compile(dialect=self.dialect)).split(" ADD ", 1)[1]
                     for fk in sorted(table(name).foreign_key_constraints, key=lambda c: list(c.column_keys))]
            if adds:
                self.execute(f"ALTER TABLE `{name}` " + ", ".join(
                    a if a.startswith("ADD ") else f"ADD {a}" for a in adds))
            self._pending.remove(name)

    @staticmethod
    def _keys(name: str) -> list[str]:
        return [f"`{i.name}` ({', '.join(f'`{c.name}`' for c in i.columns)})"
                for i in sorted(table(name).indexes, key=lambda i: i.name or "")]

    def _parent_collation(self, name: str) -> str | None:
        """The collation of an existing table that ``name`` references (e.g. a latin1 dump)."""
        parents = sorted({fk.column.table.name for fk in table(name).foreign_keys} - {name}
                         - set(self.created))
        if not parents:
            return None
        with self.conn.cursor() as cur:
            cur.execute("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME IN %s", (parents,))
            rows = cur.fetchall()
        return rows[0][0] if rows and rows[0][0] else None

    def bulk_insert(self, name: str, data: pa.Table, progress: Progress = SILENT) -> None:
        columns = ", ".join(f"`{c}`" for c in data.column_names)
        fd, path = tempfile.mkstemp(prefix=f"recpipe-{name}-", suffix=".csv")
        os.close(fd)
        try:
            for batch in data.to_batches(max_chunksize=CHUNK_ROWS):
                write_csv_file(batch, path)
                with self.conn.cursor() as cur:
                    cur.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{name}` CHARACTER SET utf8mb4 "
                        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                        f"LINES TERMINATED BY '\\n' ({columns})", (path,))
                    loaded = cur.rowcount
                    cur.execute("SHOW COUNT(*) WARNINGS")
                    warnings = cur.fetchone()[0]
                    if warnings or loaded != batch.num_rows:
                        cur.execute("SHOW WARNINGS LIMIT 3")
                        said = "; ".join(r[2] for r in cur.fetchall())
                        raise InputError(f"loading table {name!r} into {self.source.url}: "
                                         f"{loaded:,} of {batch.num_rows:,} rows, {warnings} warning(s): {said}",
                                         hint="the rows do not fit the table's columns; nothing was kept")
                progress.advance(name, batch.num_rows)
        finally:
            os.unlink(path)

    def execute(self, statement: str, *, creates: str | None = None) -> None:
        if creates:
            self.created.append(creates)  # before: a half-made table is dropped on failure too
        with self.conn.cursor() as cur:
            cur.execute(statement)

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
