"""Recommendations for a batch of events, in-process: the model and pgvector, one batched
vector-database round trip per kind of query for the whole batch.

For each event, ``recommended_items`` (the ``strategy`` says which):

* ``session``: the event's ``browse_history`` holds a product with an embedding — the
  customer's own vector (stored, else from their features; none for a visitor) moved toward
  what the session looks at (``inference.session``), ranked by pgvector;
* ``stored``, else ``features``, else ``popular``, as the service answers them.

By default every list leaves out what the customer bought, what the session already browsed or
carted, and what is out of stock. ``similar_items`` are for the latest browsed product that has
an embedding (unknown codes are skipped). Answers are cached for as long as the model and the
loaded vectors stay the same (a session's events repeat questions): per customer, per set of
features, per product and per session state. A session answer leaves out its history inside
the query; a stored or features answer is only given when no product of the history has an
embedding, so nothing of that history can be among its candidates.
Every event is then recorded in the session store (``vectors.sessions``), which the service reads.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import uuid
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recpipe.contracts.events import (
    SIMILAR_ROUNDS,
    STREAM_K,
    EnrichedRecord,
    Event,
    Item,
    enriched,
)
from recpipe.contracts.limits import MAX_K, MAX_RECENT
from recpipe.contracts.vectors import Scored
from recpipe.inference.connections import Connections
from recpipe.inference.model import ModelSource
from recpipe.inference.recommend import Recommender, Served
from recpipe.vectors import matrix
from recpipe.vectors.query import Filters
from recpipe.vectors.sessions import Recorder, rows_of

log = logging.getLogger("recpipe.streaming.enrich")
K = STREAM_K
DEPTH = 10  # candidates kept beyond k per cached similar-items answer (left out in memory: the cart, the product)
CACHE_ENTRIES = 200_000
# The model, the catalog and the cache are long-lived: Python's cyclic collector rescanned them
# in every full collection, which made a 500-record batch's p99 5x its p50 (bench/stream.py:
# p50 65 / p99 278 ms; with them frozen out of the scans, gc.freeze(), 43 / 54 ms). They are
# frozen after the first batch and again each time the cache has grown by this many answers.
FREEZE_EVERY = 5_000


class Enricher(Protocol):
    """What the transformation asks: one enriched record per event, in order; a backend that
    cannot answer raises ServiceError (the invocation fails and is retried)."""

    def enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]: ...


@dataclass
class _Answers:
    """What one loaded model has answered, kept while it and the load stay the same."""

    key: tuple[str, Any]  # (model version, when the vector database was loaded or switched)
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # answers (Ranked | None) and purchases
    matrix: matrix.ItemMatrix | None = None  # its item vectors, if few enough to rank here
    frozen_at: int | None = None  # cache size at the last gc.freeze()


class LocalEnricher:
    """In-process: the model and pgvector, with answers cached (see the module's text). While an
    experiment runs, each event is answered by its shopper's variant (``Recommender.choose``)."""

    def __init__(self, models: ModelSource, connections: Connections, *, k: int = K,
                 switch_every: float = 1.0) -> None:
        self.connections = connections
        self.recommender = Recommender(models, check_every=switch_every)
        self.k = k
        self._answers: dict[str, _Answers] = {}  # per model version shown
        self._state = _Answers(("", None))  # the model answering the group of events at hand
        self.recorder = Recorder()  # what this enricher wrote to the session store
        self.store_failures = 0  # batches the session store refused (logged)
        self._writer = futures.ThreadPoolExecutor(1, thread_name_prefix="recpipe-session-store")

    @property
    def _cache(self) -> dict[tuple[Any, ...], Any]:
        return self._state.cache

    @property
    def _matrix(self) -> matrix.ItemMatrix | None:
        return self._state.matrix

    def enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]:
        """One enriched record per event, in order. A database outage raises ServiceError."""
        if not events:
            return []
        # the session store is written on a second connection while the batch is enriched on
        # this one: the database works on one core while Python works on the other
        writing = self._writer.submit(self._record, events)
        try:
            out = self._enrich(events)
        except BaseException:
            futures.wait([writing])
            raise
        writing.result()
        return out

    def _enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]:
        with self.connections.queries() as q:
            shop = self.recommender.shop(q)
            groups: dict[tuple[str, str | None, bool], list[int]] = {}
            chosen: dict[tuple[str, str | None, bool], Served] = {}
            for i, e in enumerate(events):
                served, variant = self.recommender.choose(
                    q, shop, e.customer_number if e.customer_number is not None else e.session_id)
                key = (served.version, None if variant is None else variant.name,
                       variant is not None and variant.popularity)
                groups.setdefault(key, []).append(i)
                chosen[key] = served
            out: list[EnrichedRecord | None] = [None] * len(events)
            for key, at in groups.items():
                q.use(chosen[key].tables)
                records = self._enrich_with(q, shop, chosen[key], [events[i] for i in at], key[1], popular=key[2])
                for i, record in zip(at, records, strict=True):
                    out[i] = record
        return [r for r in out if r is not None]

    def _enrich_with(self, q: Any, shop: Any, served: Served, events: Sequence[Event], variant: str | None, *,
                     popular: bool) -> list[EnrichedRecord]:
        """The records of events one model answers (``popular``: the most bought products)."""
        stock = Filters(in_stock=True)
        model = self.recommender.model_of(served)
        key = (model.version, shop.loaded_at)
        state = self._answers.get(model.version)
        if state is None or state.key != key or len(state.cache) > CACHE_ENTRIES:
            state = self._answers[model.version] = _Answers(key, matrix=q.read(matrix.read, None, served.tables))
            for other in [v for v, a in self._answers.items() if a.key[1] != shop.loaded_at]:
                del self._answers[other]  # a load or a switch since: its answers are stale
        self._state = state
        bought = bool(shop.popular)  # purchases are loaded: leave out what each customer bought
        if popular:
            sessions: dict[int, tuple[str, list[Item] | None]] = {}
            answers: list[tuple[str, list[Item] | None]] = [("popular", None)] * len(events)
        else:
            sessions = self._sessions(q, model, served, events, stock, bought)
            rest = [e for i, e in enumerate(events) if i not in sessions]
            self._fill_users(q, rest, stock, bought)
            self._fill_features(q, model, rest, stock, bought)
            answers = [sessions[i] if i in sessions else self._answer(e, bought) for i, e in enumerate(events)]
        if bought:
            self._purchases(q, [e.customer_number for e, (_s, items) in zip(events, answers, strict=True)
                                if items is None and e.customer_number is not None])
        similar = self._similar(q, events, stock)
        top = self._popular(shop, events)
        if state.frozen_at is None or len(state.cache) - state.frozen_at >= FREEZE_EVERY:
            gc.freeze()
            state.frozen_at = len(state.cache)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        out = []
        for e, (strategy, items), (code, alike) in zip(events, answers, similar, strict=True):
            seen = _left_out(e)
            if items is None:
                items = _top(top, seen | self._bought(e), self.k)
            out.append(enriched(e, items, code, _top(alike, seen | {code}, self.k),
                                recommendation_id=str(uuid.uuid4()), model_version=model.version,
                                strategy=strategy, recommended_at=now, variant=variant))
        return out

    def _record(self, events: Sequence[Event]) -> None:
        """Write the batch to the session store (on the writer's thread and connection). A
        database that refuses the write (no privilege on ``recent_activity``, a read-only replica)
        is logged and the batch still delivered: the records are the product, the store their
        freshness. An outage still fails the batch."""
        import psycopg

        rows = self.recorder.fresh(rows_of(events))
        try:
            with self.connections.queries() as q:
                q.record_activity(rows, prune=self.recorder.crowded(rows))
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            self.store_failures += 1
            if self.store_failures == 1 or self.store_failures % 100 == 0:
                log.warning("the session store was not written (%d batch(es) so far): %s; grant this database user "
                            "CREATE on the schema, or create recent_activity and grant it INSERT, UPDATE, DELETE",
                            self.store_failures, str(exc).strip().splitlines()[0])
            return
        self.recorder.done(rows)

    def _sessions(self, q: Any, model: Any, served: Served, events: Sequence[Event], stock: Filters,
                  bought: bool) -> dict[int, tuple[str, list[Item] | None]]:
        """The session strategy's answers, for the events whose history has a product the model
        knows. Not cached: nearly every event asks a new question (its click changed the session)."""
        asking = [i for i, e in enumerate(events) if e.browse_history]
        if not asking:
            return {}
        m = self._matrix
        if m is not None:
            index, items = m.index, m.vectors
        else:
            vectors = self.recommender.item_vectors(q, served, list(dict.fromkeys(
                b.product_code for i in asking for b in events[i].browse_history[-MAX_RECENT:])))
            if not vectors:
                return {}
            index = {c: n for n, c in enumerate(vectors)}
            items = np.stack(list(vectors.values()))
        history, cart, known = _histories(model.session.max_recent, [events[i] for i in asking], index)
        asking = [i for i, ok in zip(asking, known, strict=True) if ok]
        if not asking:
            return {}
        asked = [events[i] for i in asking]
        stored = self.recommender.user_vectors(q, served, [c for e in asked if (c := e.customer_number) is not None])
        queries = self._session_vectors(model, items, history[known], cart[known], stored, asked)
        if m is None:  # a catalog too large to rank here: pgvector's index
            found = q.items_for_embeddings(queries, self.k, filters=stock,
                                           skip_each=[sorted(_left_out(e)) for e in asked],
                                           buyers=[e.customer_number if bought else None for e in asked])
            return {i: ("session", [{"id": str(s.id), "score": round(s.score, 6)} for s in items_])
                    for i, items_ in zip(asking, found, strict=True)}
        # ranked in process (vectors.matrix): pgvector's exact answer, a fraction of the cost
        if bought:
            self._purchases(q, [c for e in asked if (c := e.customer_number) is not None])
        leave_out = [m.rows(b.product_code for b in e.browse_history) for e in asked]
        if bought:
            leave_out = [np.concatenate([seen, self._bought_rows(m, e)]) for seen, e in zip(leave_out, asked, strict=True)]
        rows, scores = m.best(queries, self.k, leave_out, in_stock=stock.in_stock)
        ids, rounded = m.ids, np.round(scores.astype(np.float64), 6).tolist()
        return {i: ("session", [{"id": ids[j], "score": x} for j, x in zip(r, sc, strict=True) if x != -np.inf])
                for i, r, sc in zip(asking, rows.tolist(), rounded, strict=True)}

    @staticmethod
    def _session_vectors(model: Any, items: np.ndarray, history: np.ndarray, cart: np.ndarray,
                         stored: dict[int, Any], events: list[Event]) -> np.ndarray:
        """Every asking event's session vector in one pass (``SessionEncoder.user_vectors``;
        ``history`` holds rows of ``items``): a customer's own vector is their stored one, else
        their features'; a visitor has none."""
        own = np.zeros((len(events), items.shape[1]), dtype=np.float32)
        has_own = np.zeros(len(events), dtype=bool)
        by_features = []
        for j, e in enumerate(events):
            if e.customer_number in stored:
                own[j], has_own[j] = stored[e.customer_number], True
            elif e.customer_number is not None:
                by_features.append(j)
        if by_features:
            embedded, usable = model.user_embeddings([events[j].features() for j in by_features])
            for j, vector, ok in zip(by_features, embedded, usable, strict=True):
                own[j], has_own[j] = vector, bool(ok)
        return model.session.user_vectors(own, history, items, cart, has_own)

    # -- what to ask the vector database: only what the cache does not know --------------------------
    def _fill_users(self, q: Any, events: Sequence[Event], stock: Filters, bought: bool) -> None:
        missing = sorted({e.customer_number for e in events if e.customer_number is not None
                          and ("user", e.customer_number) not in self._cache})
        if missing:
            found = q.items_for_users(missing, self.k, filters=stock, not_bought=bought)
            for c, items in zip(missing, found, strict=True):
                self._cache[("user", c)] = None if items is None else _ranked(items)

    def _fill_features(self, q: Any, model: Any, events: Sequence[Event], stock: Filters, bought: bool) -> None:
        """Features answers, per set of features (and per customer where purchases are left out)."""
        wanted = {self._features(e, bought): e for e in events if self._cache.get(("user", e.customer_number)) is None}
        missing = [key for key in wanted if key not in self._cache]
        if not missing:
            return
        vectors, usable = model.user_embeddings([wanted[key].features() for key in missing])
        for key, ok in zip(missing, usable, strict=True):
            if not ok:
                self._cache[key] = None  # nothing the model knows: popular items
        chosen = [key for key, ok in zip(missing, usable, strict=True) if ok]
        if chosen:
            found = q.items_for_embeddings(vectors[usable], self.k, filters=stock,
                                           buyers=[key[2] for key in chosen])
            for key, items in zip(chosen, found, strict=True):
                self._cache[key] = _ranked(items)

    @staticmethod
    def _features(e: Event, bought: bool) -> tuple[Any, ...]:
        return ("features", _features_key(e), e.customer_number if bought else None)

    def _answer(self, e: Event, bought: bool) -> tuple[str, list[Item] | None]:
        """(strategy, the top k without what the session saw) from the cache; None items: popular ones."""
        for strategy, key in (("stored", ("user", e.customer_number)), ("features", self._features(e, bought))):
            found = self._cache.get(key)
            if found is not None:
                return strategy, _top(found, _left_out(e), self.k)
        return "popular", None

    def _purchases(self, q: Any, customers: Sequence[int]) -> None:
        """What these customers bought, read once per load (one query for those not read yet)."""
        missing = sorted({c for c in customers if ("bought", c) not in self._cache})
        if missing:
            found = q.bought_many(missing)
            for c in missing:
                self._cache[("bought", c)] = frozenset(found.get(c, ()))

    def _bought_rows(self, m: matrix.ItemMatrix, e: Event) -> np.ndarray:
        """The rows of ``m`` that the event's customer bought (once per load)."""
        key = ("bought_rows", e.customer_number)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = m.rows(self._bought(e))
        return found

    def _bought(self, e: Event) -> set[str]:
        return set(self._cache.get(("bought", e.customer_number)) or ())

    def _popular(self, shop: Any, events: Sequence[Event]) -> Ranked:
        """The most bought products in stock, enough for the longest leave-out list of the batch."""
        top = (shop.popular[0][3] if shop.popular else 0) or 1
        most = self.k + max(len(e.browse_history) + len(self._bought(e)) for e in events)
        return _ranked([Scored(item, buyers / top) for item, _line, in_stock, buyers in shop.popular
                        if (in_stock or 0) > 0][:most])

    def _similar(self, q: Any, events: Sequence[Event], stock: Filters) -> list[tuple[str | None, Ranked]]:
        """Per event: the latest browsed product with an embedding, and its similar items."""
        out: list[tuple[str | None, Ranked]] = [(None, [])] * len(events)
        waiting = [i for i, e in enumerate(events) if e.browse_history]
        depth = min(MAX_K, self.k + DEPTH + MAX_RECENT + 1)  # room to leave out a recent history
        for back in range(1, SIMILAR_ROUNDS + 1):
            asks = {i: events[i].browse_history[-back].product_code for i in waiting
                    if len(events[i].browse_history) >= back}
            if not asks:
                break
            missing = sorted({code for code in asks.values() if ("similar", code) not in self._cache})
            if missing:
                for code, found in zip(missing, q.similar_items_many(missing, depth, filters=stock), strict=True):
                    self._cache[("similar", code)] = None if found is None else _ranked(found)
            for i, code in asks.items():
                found = self._cache[("similar", code)]
                if found is not None:
                    out[i] = (code, found)
            waiting = [i for i in waiting if out[i][0] is None]
        return out


def _histories(width: int, events: Sequence[Event], index: dict[str, int]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each event's last ``MAX_RECENT`` products that have a row in ``index``, the latest
    ``width`` of them as rows (oldest first, -1 padded on the left), which of them are in the
    cart, and whether the event has any."""
    history = np.full((len(events), width), -1, dtype=np.int64)
    cart = np.zeros((len(events), width), dtype=bool)
    for j, e in enumerate(events):
        known = [(index[b.product_code], b.in_shopping_cart) for b in e.browse_history[-MAX_RECENT:]
                 if b.product_code in index][-width:]
        if known:
            history[j, width - len(known):] = [r for r, _ in known]
            cart[j, width - len(known):] = [c for _, c in known]
    return history, cart, history[:, -1] >= 0


def _features_key(e: Event) -> tuple[Any, ...]:
    return (e.city, e.country, e.credit_limit)


def _left_out(e: Event) -> set[str]:
    """What the event's session already browsed or carted (the cart is part of the history)."""
    return {b.product_code for b in e.browse_history}


Ranked = list[tuple[Any, Item]]  # (id, its {"id", "score"} as written), best first


def _ranked(found: Sequence[Scored]) -> Ranked:
    """Formatted once per answer, shared by every event that gets it."""
    return [(s.id, {"id": str(s.id), "score": round(s.score, 6)}) for s in found]


def _top(items: Ranked, leave_out: set[str] | set[str | None], k: int) -> list[Item]:
    out: list[Item] = []
    for item, doc in items:
        if item not in leave_out:
            out.append(doc)
            if len(out) == k:
                break
    return out
