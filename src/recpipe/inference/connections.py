"""Vector-database connections for long-lived callers (the HTTP service, the streaming
transformation): one ``VectorQueries`` per thread, opened on first use; a database error drops
it and becomes a ``ServiceError``, so the next call reconnects once the database is back."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from recpipe.adapters.base import VectorDatabase
from recpipe.errors import InputError, ServiceError, said
from recpipe.vectors.query import VectorQueries


class Connections:
    def __init__(self, db: VectorDatabase, *, ef_search: int | None = None) -> None:
        self.db = db
        self.ef_search = ef_search
        self._local = threading.local()
        self._open: set[VectorQueries] = set()  # every thread's connection, for close()
        self._lock = threading.Lock()

    @contextmanager
    def queries(self) -> Iterator[VectorQueries]:
        """This thread's connection (opened if needed)."""
        import psycopg

        q = getattr(self._local, "q", None)
        try:
            if q is None:
                q = self._local.q = VectorQueries(self.db, ef_search=self.ef_search)
                with self._lock:
                    self._open.add(q)
            yield q
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown, psycopg.InterfaceError) as exc:
            self._drop()
            raise ServiceError(f"the vector database {self.db.url} is unavailable: {said(exc)}",
                               hint="retry shortly") from exc
        except ServiceError:
            self._drop()
            raise
        except psycopg.DataError as exc:  # a value the database cannot hold: the caller's input
            raise InputError(f"the vector database refused a value: {said(exc)}",
                             hint="check the ids and text sent") from exc

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for q in self._open:
                with contextlib.suppress(Exception):
                    q.close()
            self._open.clear()

    def _drop(self) -> None:
        q = getattr(self._local, "q", None)
        self._local.q = None
        if q is not None:
            with self._lock:
                self._open.discard(q)
            with contextlib.suppress(Exception):  # already broken
                q.close()
