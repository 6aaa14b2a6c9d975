"""What the HTTP layer needs at run time: the model source, the recommender, and one vector
database connection per worker thread, rebuilt after an outage."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from recpipe.adapters import open_artifacts, open_vectors
from recpipe.adapters.base import VectorDatabase
from recpipe.config import Settings
from recpipe.errors import ServiceError
from recpipe.inference.model import ModelSource
from recpipe.inference.recommend import Recommender
from recpipe.vectors.query import VectorQueries


class Service:
    def __init__(self, settings: Settings, *, ef_search: int | None = None, check_every: float = 10.0) -> None:
        store, name = open_artifacts(settings.artifacts_url)
        self.models = ModelSource(store, name, check_every=check_every)
        self.recommender = Recommender(self.models, check_every=check_every)
        self.db: VectorDatabase = open_vectors(settings.vectors_url)
        self.ef_search = ef_search
        self._local = threading.local()
        self._conninfo: str | None = None

    @contextmanager
    def queries(self) -> Iterator[VectorQueries]:
        """This thread's connection; a database error drops it and becomes a ServiceError (503),
        so the next request reconnects once the database is back."""
        import psycopg

        q = getattr(self._local, "q", None)
        try:
            if q is None:
                q = self._local.q = VectorQueries(self.db, ef_search=self.ef_search)
            yield q
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown, psycopg.InterfaceError) as exc:
            self._drop()
            raise ServiceError(f"the vector database {self.db.url} is unavailable: {str(exc).strip().splitlines()[0]}",
                               hint="retry shortly") from exc
        except ServiceError:
            self._drop()
            raise

    def warm(self) -> None:
        """Load the model and the catalog cache now; a failure is left for /ready to report."""
        with contextlib.suppress(Exception):
            self.models.get()
            with self.queries() as q:
                self.recommender.shop(q)

    def _drop(self) -> None:
        q = getattr(self._local, "q", None)
        self._local.q = None
        if q is not None:
            with contextlib.suppress(Exception):  # already broken
                q.close()
