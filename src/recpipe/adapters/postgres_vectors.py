"""A vector database at a URL: any PostgreSQL with pgvector (RDS, a local server)."""

from __future__ import annotations

from recpipe.adapters.base import server_url
from recpipe.config import mask_url


class ServerPostgres:
    def __init__(self, url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> None:
        parsed = server_url(url, setting, aliases=("postgresql", "postgres", "postgresql+psycopg"),
                            driver="postgresql", example="postgresql://user:pass@host:5432/db")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self.url = mask_url(url)

    def conninfo(self) -> str:
        return self._conninfo

    def stop(self) -> bool:
        return False
