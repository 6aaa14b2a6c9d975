"""What the HTTP layer needs at run time: the model source, the recommender, and a small pool
of threads, each with its own vector database connection (rebuilt after an outage).

Endpoints are coroutines that hand only the blocking part (model + database) to this pool.
The pool is deliberately small, one thread per core by default. Measured on 2 cores at 16
clients (bench/serve.py, /recommendations): 2 threads gave a p99 of ~17 ms, 3 threads ~23 ms,
4 threads ~50 ms, at the same or lower throughput: on a machine that also runs PostgreSQL,
more threads only add contention for the GIL and the cores instead of queueing in front of
the pool. A database on other machines (RDS) leaves the cores to Python: try more there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from recpipe.adapters import Backends
from recpipe.adapters.base import VectorDatabase
from recpipe.api.impressions import ImpressionLog
from recpipe.config import Settings
from recpipe.contracts.events import Activity
from recpipe.inference.connections import Connections
from recpipe.inference.model import Model, ModelSource
from recpipe.inference.recommend import Recommendation, Recommender, Rules
from recpipe.vectors.query import VectorQueries

T = TypeVar("T")


def default_threads() -> int:
    """One per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Service:
    def __init__(self, settings: Settings, *, ef_search: int | None = None, check_every: float | None = None,
                 threads: int | None = None) -> None:
        """Options left None come from the settings (RECPIPE_SERVE_*); ``check_every`` sets both
        how often the artifacts and the vector database are looked at."""
        ef_search = ef_search or settings.serve_ef_search
        threads = threads or settings.serve_threads
        store, name = Backends(settings).artifacts()
        self.models = ModelSource(store, name, check_every=check_every or settings.serve_reload_every)
        self.recommender = Recommender(self.models, check_every=check_every or settings.serve_switch_every)
        self.db: VectorDatabase = Backends(settings).vectors()
        self.ef_search = ef_search
        self.threads = threads or default_threads()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="recpipe-db")
        self.connections = Connections(self.db, ef_search=self.ef_search)
        self.impressions: ImpressionLog | None = None
        if settings.serve_impressions_every:
            self.impressions = ImpressionLog(Backends(settings).recommendations(),
                                             every=settings.serve_impressions_every)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the service's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Finish running work, then close every thread's connection."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.connections.close()
        if self.impressions is not None:
            self.impressions.close()

    # -- blocking work, run through run() -------------------------------------------------------
    def user_embeddings(self, records: list[dict[str, Any]]) -> tuple[Model, list[list[float]]]:
        """The user tower of the serving model: its answers go back into /items_from_user
        (which ranks the serving model's item vectors: no experiment on the seed's endpoints)."""
        with self.queries() as q:
            model = self.recommender.model(q)
        return model, (model.user_embeddings(records)[0].tolist() if records else [])

    def items_for_embedding(self, embedding: list[float], limit: int) -> Recommendation:
        with self.queries() as q:  # an all-zero vector is an InputError (422) there
            model = self.recommender.model(q)
            found = q.items_for_embedding(embedding, limit)
        return Recommendation(model.version, "embedding", [s.to_json() for s in found])

    def similar_to_item(self, item_id: str, rules: Rules) -> Recommendation:
        with self.queries() as q:
            return self.recommender.similar_to_item(q, item_id, rules)

    def for_customer(self, customer_number: int, features: Mapping[str, Any] | None, rules: Rules,
                     recent: Sequence[Activity] | None = None, session_id: str | None = None) -> Recommendation:
        """``session_id``: where the list is shown (logged with it; the customer's variant is theirs)."""
        with self.queries() as q:
            rec = self.recommender.for_customer(q, customer_number, features, rules, recent)
        self._shown(rec, customer_number, session_id)
        return rec

    def for_session(self, session_id: str, features: Mapping[str, Any] | None, rules: Rules,
                    recent: Sequence[Activity] | None = None) -> tuple[Recommendation, int | None]:
        """The session's recommendations and its customer (None: a visitor, or ``recent`` given)."""
        with self.queries() as q:
            rec, customer = self.recommender.for_session(q, session_id, features, rules, recent)
        self._shown(rec, customer, session_id)
        return rec, customer

    def _shown(self, rec: Recommendation, customer: int | None, session: str | None) -> None:
        """An answer of /recommendations is an impression: logged (``api.impressions``)."""
        if self.impressions is not None:
            self.impressions.log(dt.datetime.now(dt.UTC), rec.recommendation_id, rec.model_version, rec.strategy,
                                 rec.items, customer, session, rec.variant)

    def ready(self) -> tuple[Model, str | None]:
        """The served model, once the vector database answers and holds a load, and the latest
        published version (None if the artifacts cannot be read); raises otherwise."""
        with self.queries() as q:
            model = self.recommender.model(q)
            q.check_loaded()
        try:
            published = self.models.version()  # the manifest only
        except Exception:  # the artifacts are not needed to serve what is loaded
            published = None
        return model, published

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        """One of ``recpipe.vectors``' reads (the page's look-ups, the stage's status) on this
        thread's connection."""
        with self.queries() as q:
            return q.read(fn, *args)

    def product_lines(self) -> list[str]:
        with self.queries() as q:
            return q.product_lines()

    def warm(self) -> None:
        """Load the model and the catalog cache now; a failure is left for /ready to report."""
        with contextlib.suppress(Exception), self.queries() as q:
            self.recommender.model(q)

    # -- connections -------------------------------------------------------------------------------
    def queries(self) -> AbstractContextManager[VectorQueries]:
        """This thread's connection; a database error drops it and becomes a ServiceError (503),
        so the next request reconnects once the database is back."""
        return self.connections.queries()
