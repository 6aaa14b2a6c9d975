"""Recommendations for a batch of events, in-process: the model and pgvector, one batched
vector-database round trip per kind of query for the whole batch.

For each event: ``recommended_items`` from the customer's stored embedding, else from their
features through the user tower, else the most popular products; ``similar_items`` for the
latest browsed product that has an embedding (unknown codes are skipped). The rules are the
service's defaults for a stream: in stock only, nothing already in the cart (each event's
cart travels with its key in the batch query).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from recpipe.contracts.events import Event
from recpipe.contracts.limits import MAX_K
from recpipe.contracts.vectors import Scored
from recpipe.inference.connections import Connections
from recpipe.inference.model import ModelSource
from recpipe.inference.recommend import Recommender
from recpipe.vectors.query import Filters

K = 10
SIMILAR_ROUNDS = 3  # how far back in a browse history to look for a product with an embedding


class Enricher:
    def __init__(self, models: ModelSource, connections: Connections, *, k: int = K) -> None:
        self.models = models
        self.connections = connections
        self.recommender = Recommender(models)
        self.k = k

    def enrich(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        """One enriched record per event, in order. A database outage raises ServiceError."""
        if not events:
            return []
        model = self.models.get()
        fetch = self.k
        stock = Filters(in_stock=True)
        carts = [e.cart for e in events]
        with self.connections.queries() as q:
            shop = self.recommender.shop(q)
            found: list[list[Scored] | None] = [None] * len(events)
            strategy = ["popular"] * len(events)
            known = [i for i, e in enumerate(events) if e.customer_number is not None]
            if known:
                stored = q.items_for_users([events[i].customer_number for i in known], fetch,  # type: ignore[misc]
                                           filters=stock, skip_each=[carts[i] for i in known])
                for i, items in zip(known, stored, strict=True):
                    if items is not None:
                        found[i], strategy[i] = items, "stored"
            rest = [i for i in range(len(events)) if found[i] is None]
            if rest:
                vectors, usable = model.user_embeddings([events[i].features() for i in rest])
                chosen = [i for i, ok in zip(rest, usable, strict=True) if ok]
                if chosen:
                    answers = q.items_for_embeddings(vectors[usable], fetch, filters=stock,
                                                     skip_each=[carts[i] for i in chosen])
                    for i, items in zip(chosen, answers, strict=True):
                        found[i], strategy[i] = items, "features"
            similar = self._similar(q, events, fetch, stock, carts)
        top = (shop.popular[0][3] if shop.popular else 0) or 1
        popular = [Scored(item, buyers / top) for item, _line, in_stock, buyers in shop.popular
                   if (in_stock or 0) > 0][:fetch + max(map(len, carts))]
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        out = []
        for i, e in enumerate(events):
            cart = set(e.cart)
            items = found[i] if found[i] is not None else popular
            code, alike = similar[i]
            out.append({**e.to_json(),
                        "recommended_items": _top(items, cart, self.k),
                        "similar_items": {"product_code": code, "similar_items": _top(alike, cart | {code}, self.k)},
                        "recommendation_id": str(uuid.uuid4()), "model_version": model.version,
                        "strategy": strategy[i], "recommended_at": now})
        return out

    def _similar(self, q: Any, events: Sequence[Event], fetch: int, stock: Filters, carts: list[list[str]]
                 ) -> list[tuple[str | None, list[Scored]]]:
        """Per event: the latest browsed product with an embedding, and its similar items."""
        out: list[tuple[str | None, list[Scored]]] = [(None, [])] * len(events)
        waiting = [i for i, e in enumerate(events) if e.browse_history]
        for back in range(1, SIMILAR_ROUNDS + 1):
            asks = {i: events[i].browse_history[-back].product_code for i in waiting
                    if len(events[i].browse_history) >= back}
            if not asks:
                break
            # one key per distinct product (fewer keys than events); each event drops its cart after
            codes = sorted(set(asks.values()))
            more = max(len(carts[i]) for i in asks)
            answers = dict(zip(codes, q.similar_items_many(codes, min(MAX_K, fetch + more), filters=stock),
                               strict=True))
            for i, code in asks.items():
                if answers[code] is not None:
                    out[i] = (code, answers[code])
            waiting = [i for i in waiting if out[i][0] is None]
        return out


def _top(items: Sequence[Scored], leave_out: set[str | None], k: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in items:
        if s.id not in leave_out:
            out.append({"id": s.id, "score": round(s.score, 6)})
            if len(out) == k:
                break
    return out
