"""Recommendations for a batch of events, in-process: the model and pgvector, one batched
vector-database round trip per kind of query for the whole batch.

For each event: ``recommended_items`` from the customer's stored embedding, else from their
features through the user tower, else the most popular products; ``similar_items`` for the
latest browsed product that has an embedding (unknown codes are skipped). The rules are the
service's defaults for a stream: in stock only, nothing already in the cart (answers carry
``DEPTH`` spare candidates, so a cart is left out in memory; a larger cart is asked again
with the cart left out in the query).
"""

from __future__ import annotations

import datetime as dt
import gc
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from recpipe.contracts.events import SIMILAR_ROUNDS, STREAM_K, EnrichedRecord, Event, Item, enriched
from recpipe.contracts.limits import MAX_K
from recpipe.contracts.vectors import Scored
from recpipe.inference.connections import Connections
from recpipe.inference.model import ModelSource
from recpipe.inference.recommend import Recommender
from recpipe.vectors.query import Filters

K = STREAM_K
DEPTH = 10  # candidates kept beyond k per cached answer: a cart of up to this many is left out in memory
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


class LocalEnricher:
    """In-process: the model and pgvector. Answers are cached per customer, per set of features and per product for as long as the
    model and the loaded vectors stay the same (a new model or ``vectors load`` empties the cache):
    a session's events repeat the same questions."""

    def __init__(self, models: ModelSource, connections: Connections, *, k: int = K) -> None:
        self.connections = connections
        self.recommender = Recommender(models, check_every=models.check_every)
        self.k = k
        self._cache: dict[tuple[str, Any], Ranked | None] = {}
        self._version: tuple[str, Any] | None = None
        self._frozen_at: int | None = None  # cache size at the last gc.freeze()

    def enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]:
        """One enriched record per event, in order. A database outage raises ServiceError."""
        if not events:
            return []
        stock = Filters(in_stock=True)
        with self.connections.queries() as q:
            shop = self.recommender.shop(q)
            model = self.recommender.model(q)  # the one whose item vectors are loaded
            if self._version != (model.version, shop.loaded_at) or len(self._cache) > CACHE_ENTRIES:
                self._cache.clear()  # its entries hold no cycles: freed at once, frozen or not
                self._version = (model.version, shop.loaded_at)
                self._frozen_at = None
            self._fill_users(q, events, stock)
            self._fill_features(q, model, events, stock)
            similar = self._similar(q, events, stock)
            answers = [self._answer(e) for e in events]
            self._refill(q, model, events, answers, stock)
        top = (shop.popular[0][3] if shop.popular else 0) or 1
        popular = _ranked([Scored(item, buyers / top) for item, _line, in_stock, buyers in shop.popular
                           if (in_stock or 0) > 0][:self.k + max(len(e.cart) for e in events)])
        if self._frozen_at is None or len(self._cache) - self._frozen_at >= FREEZE_EVERY:
            gc.freeze()
            self._frozen_at = len(self._cache)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        out = []
        for e, (strategy, items), (code, alike) in zip(events, answers, similar, strict=True):
            cart = set(e.cart)
            out.append(enriched(e, items if items is not None else _top(popular, cart, self.k), code,
                                _top(alike, cart | {code}, self.k), recommendation_id=str(uuid.uuid4()),
                                model_version=model.version, strategy=strategy, recommended_at=now))
        return out

    # -- what to ask the vector database: only what the cache does not know --------------------------
    def _fill_users(self, q: Any, events: Sequence[Event], stock: Filters) -> None:
        missing = sorted({e.customer_number for e in events if e.customer_number is not None
                          and ("user", e.customer_number) not in self._cache})
        if missing:
            for c, found in zip(missing, q.items_for_users(missing, self.k + DEPTH, filters=stock), strict=True):
                self._cache[("user", c)] = None if found is None else _ranked(found)

    def _fill_features(self, q: Any, model: Any, events: Sequence[Event], stock: Filters) -> None:
        wanted = {_features_key(e): e for e in events if self._cache.get(("user", e.customer_number)) is None}
        missing = [key for key in wanted if ("features", key) not in self._cache]
        if not missing:
            return
        vectors, usable = model.user_embeddings([wanted[key].features() for key in missing])
        for key, ok in zip(missing, usable, strict=True):
            if not ok:
                self._cache[("features", key)] = None  # nothing the model knows: popular items
        chosen = [key for key, ok in zip(missing, usable, strict=True) if ok]
        if chosen:
            found = q.items_for_embeddings(vectors[usable], self.k + DEPTH, filters=stock)
            for key, items in zip(chosen, found, strict=True):
                self._cache[("features", key)] = _ranked(items)

    def _answer(self, e: Event) -> tuple[str, list[Item] | None]:
        """(strategy, the top k without the cart) from the cache; None items: popular ones."""
        for strategy, key in (("stored", ("user", e.customer_number)), ("features", ("features", _features_key(e)))):
            found = self._cache.get(key)
            if found is not None:
                return strategy, _top(found, set(e.cart), self.k)
        return "popular", None

    def _refill(self, q: Any, model: Any, events: Sequence[Event], answers: list[Any], stock: Filters) -> None:
        """A cart so large that the cached candidates ran short: ask again with that cart left out."""
        short = [i for i, (strategy, items) in enumerate(answers)
                 if items is not None and len(items) < self.k and len(events[i].cart) > DEPTH]
        users = [i for i in short if answers[i][0] == "stored"]
        if users:
            found = q.items_for_users([events[i].customer_number for i in users], self.k, filters=stock,
                                      skip_each=[events[i].cart for i in users])
            for i, items in zip(users, found, strict=True):
                answers[i] = ("stored", _top(_ranked(items or []), set(), self.k))
        others = [i for i in short if answers[i][0] == "features"]
        if others:
            vectors, _ = model.user_embeddings([events[i].features() for i in others])
            found = q.items_for_embeddings(vectors, self.k, filters=stock, skip_each=[events[i].cart for i in others])
            for i, items in zip(others, found, strict=True):
                answers[i] = ("features", _top(_ranked(items), set(), self.k))

    def _similar(self, q: Any, events: Sequence[Event], stock: Filters) -> list[tuple[str | None, Ranked]]:
        """Per event: the latest browsed product with an embedding, and its similar items."""
        out: list[tuple[str | None, Ranked]] = [(None, [])] * len(events)
        waiting = [i for i, e in enumerate(events) if e.browse_history]
        depth = min(MAX_K, self.k + DEPTH + 1)
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


def _features_key(e: Event) -> tuple[Any, ...]:
    return (e.city, e.country, e.credit_limit)


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
