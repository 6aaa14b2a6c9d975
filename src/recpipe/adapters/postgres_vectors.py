"""A vector database at a URL: any PostgreSQL with pgvector (RDS, a local server). The URL is
checked by libpq's own parser (through psycopg): serving needs no SQLAlchemy."""

from __future__ import annotations

from recpipe.config import mask_url
from recpipe.errors import ConfigError, require

EXAMPLE = "postgresql://user:pass@host:5432/db"


class ServerPostgres:
    def __init__(self, url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> None:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ConfigError(f"{setting}={mask_url(url)!r}: driver {scheme!r} is not supported", hint=f"use {EXAMPLE}")
        conninfo = f"postgresql://{rest}"
        psycopg = require("psycopg", "vectors", "The vector database")
        try:
            params = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"{setting}={mask_url(url)!r} is not a PostgreSQL URL: "
                              f"{str(exc).strip().splitlines()[0]}", hint=f"use {EXAMPLE}") from exc
        if not params.get("dbname"):
            raise ConfigError(f"{setting}={mask_url(url)!r} names no database", hint=f"add it: {EXAMPLE}")
        self._url = url
        self.url = mask_url(url)

    def conninfo(self) -> str:
        """For a new connection. A password from Secrets Manager is read again each time (RDS
        rotates it), so new connections use the current one."""
        from recpipe.credentials import current

        return f"postgresql://{current(self._url).partition('://')[2]}"

    def stop(self) -> bool:
        return False
