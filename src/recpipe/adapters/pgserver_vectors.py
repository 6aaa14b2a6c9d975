"""The embedded vector database: PostgreSQL 16 + pgvector from the ``pgserver`` package, with
its data under ``$RECPIPE_HOME/pg`` (URL ``pgserver:///path``).

The first command that needs it starts it (about a second); later commands, and other
processes, reuse the running server; ``recpipe vectors stop`` stops it. Everything past
``conninfo()`` is the same code as for a real server.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

from recpipe.errors import ServiceError, require

# Server settings of the embedded PostgreSQL (a real server is configured by its owner).
SETTINGS = {"shared_buffers": "1GB"}
STOP_ATTEMPTS = 3  # pg_ctl stop, when a server is starting as it runs
STOP_SECONDS = 60.0  # pg_ctl's own wait
# pgserver's process lock (fasteners) is not for threads: two threads of one process starting
# the server at once failed with "Unable to release an unaquired lock". One at a time.
_STARTING = threading.Lock()


_UNITS = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024**2, "GB": 1024**3}


def _bytes(value: str) -> int | None:
    """'1GB' → bytes; None if it is not a size."""
    for unit in sorted(_UNITS, key=len, reverse=True):
        if value.endswith(unit) and value[: -len(unit)].isdigit():
            return int(value[: -len(unit)]) * _UNITS[unit]
    return None


class EmbeddedPostgres:
    def __init__(self, url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> None:
        self.path = Path(url[len("pgserver://"):]).expanduser().resolve()
        self.url = f"pgserver://{self.path}"
        self.setting = setting

    def _server(self, cleanup_mode: str | None = None):
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
        with _STARTING:
            return self._conninfo()

    def _conninfo(self) -> str:
        server = self._server()
        try:
            server.ensure_postgres_running()  # pgserver caches a handle per process: it may have been stopped since
            uri = server.get_uri()
            if not self._tuned:
                self._tune(server, uri)
        except Exception as exc:
            raise ServiceError(f"the embedded PostgreSQL in {self.path} is not running (stopping or starting: "
                               f"{type(exc).__name__})", hint="retry shortly; `recpipe vectors load` or any "
                                                              "command that needs it starts it") from exc
        return uri

    _tuned = False

    def _tune(self, server, uri: str) -> None:
        """pgserver starts with PostgreSQL's 128 MB of shared buffers; an HNSW index that does
        not fit is read through the OS on every search (measured: 2× slower at 1M items).
        Set once, with a restart, the first time this data directory is used."""
        import psycopg

        with psycopg.connect(uri, autocommit=True) as conn:
            current = {name: int(setting) * _UNITS.get(unit or "B", 1) for name, setting, unit in conn.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)).fetchall()}
            wanted = {k: v for k, v in SETTINGS.items() if current.get(k) != _bytes(v)}
            for name, value in wanted.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        if wanted:
            self._pg_ctl("restart")
        self._tuned = True

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended) whoever started it. A
        process still using it (``recpipe serve``) may start a new one at once: the one asked
        to stop did stop, and that is what is reported."""
        before = self._postmaster()
        if before is None:
            return False
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                self._pg_ctl("stop", wait=False)  # pg_ctl's own wait mistakes a server started meanwhile for this one
                break
            except Exception as exc:  # e.g. a server another process started as this one stopped
                if not _alive(before):
                    break
                if attempt == STOP_ATTEMPTS:
                    raise ServiceError(f"the embedded PostgreSQL in {self.path} (pid {before}) did not stop: "
                                       f"{type(exc).__name__}", hint=f"see {self.path / 'log'}") from exc
                time.sleep(0.5)
                before = self._postmaster() or before
        deadline = time.monotonic() + STOP_SECONDS
        while _alive(before):
            if time.monotonic() > deadline:
                raise ServiceError(f"the embedded PostgreSQL in {self.path} (pid {before}) did not stop within "
                                   f"{STOP_SECONDS:.0f} s", hint=f"see {self.path / 'log'}; retry")
            time.sleep(0.05)
        return True

    def _postmaster(self) -> int | None:
        """The pid in postmaster.pid, or None when no server runs here."""
        try:
            return int((self.path / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _pg_ctl(self, action: str, *, wait: bool = True) -> None:
        """pg_ctl as the OS user pgserver runs the server as (``pgserver`` when we are root)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver import postgres_server
        user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
        postgres_server.pg_ctl(["-w" if wait else "-W", "-m", "fast", action], pgdata=self.path, user=user)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True
