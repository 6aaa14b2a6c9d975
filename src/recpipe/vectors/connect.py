"""Connections to the vector database: psycopg 3 with pgvector's types registered."""

from __future__ import annotations

import contextlib
from typing import Any

from recpipe.adapters.base import VectorDatabase
from recpipe.errors import ServiceError, require, said

PGVECTOR_HINT = ("install pgvector on that server (Debian/Ubuntu: apt-get install postgresql-16-pgvector; "
                 "RDS: it is built in), or use the embedded default (unset RECPIPE_VECTORS_URL)")


def connect(db: VectorDatabase, *, register: bool = True) -> Any:
    """An autocommit connection; a server that cannot be reached is a ServiceError."""
    psycopg = require("psycopg", "vectors", "The vector database")
    conninfo = db.conninfo()
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ServiceError(f"cannot connect to the vector database {db.url}: {said(exc)}",
                           hint="check RECPIPE_VECTORS_URL and that the server is up") from exc
    if register:
        # before CREATE EXTENSION the type does not exist yet; ensure_vector_extension registers it then
        with contextlib.suppress(psycopg.ProgrammingError):
            _register(conn)
    return conn


def has_table(conn: Any, table: str) -> bool:
    """Whether ``table`` exists (in the search path) on this connection."""
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None


def _register(conn: Any) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)


def ensure_vector_extension(conn: Any, where: str) -> None:
    """CREATE EXTENSION vector if it is missing, or say how to get it."""
    available = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if available is None:
        version = conn.execute("SHOW server_version").fetchone()[0]
        raise ServiceError(f"the PostgreSQL {version} at {where} has no pgvector extension ('vector')",
                           hint=PGVECTOR_HINT)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    _register(conn)
