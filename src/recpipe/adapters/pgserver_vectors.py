"""The embedded vector database: PostgreSQL 16 + pgvector from the ``pgserver`` package, with
its data under ``$RECPIPE_HOME/pg`` (URL ``pgserver:///path``).

The first command that needs it starts it (about a second); later commands, and other
processes, reuse the running server; ``recpipe vectors stop`` stops it. Everything past
``conninfo()`` is the same code as for a real server.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from recpipe.errors import ServiceError, require


class EmbeddedPostgres:
    def __init__(self, url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> None:
        self.path = Path(url[len("pgserver://"):]).expanduser().resolve()
        self.url = f"pgserver://{self.path}"
        self.setting = setting

    def _server(self, cleanup_mode: str | None = None):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
            warnings.simplefilter("ignore")
            pgserver = require("pgserver", "vectors", "The embedded PostgreSQL")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pgserver.get_server(self.path, cleanup_mode=cleanup_mode)
        except Exception as exc:  # pgserver raises plain exceptions from initdb/pg_ctl
            log = self.path / "log"
            raise ServiceError(f"the embedded PostgreSQL in {self.path} did not start: {exc}",
                               hint=f"see {log}; or set {self.setting} to a postgresql:// server") from exc

    def conninfo(self) -> str:
        server = self._server()
        server.ensure_postgres_running()  # pgserver caches a handle per process: it may have been stopped since
        return server.get_uri()

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended) whoever started it."""
        if not (self.path / "postmaster.pid").exists():
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver import postgres_server
        user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None  # as pgserver runs it
        postgres_server.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.path, user=user)
        return not (self.path / "postmaster.pid").exists()
