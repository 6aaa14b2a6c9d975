"""What shoppers did on the stream, as training interactions beside the ratings.

The lake's events dataset (``recpipe.contracts.activity``, written by ``etl events``) holds one
row per product a session browsed, carted or bought. For a known customer each product they
did not rate becomes one more interaction: a positive for the retrieval objective, with a
rating by its furthest kind for the rating objective (``KIND_RATING``), and a place in time
after every order (the events are newer than the source's orders), so that the session model
learns from what shoppers did last. Events of visitors, of customers or products the training
dataset does not know (no features to give them), and of pairs already rated add nothing; the
report counts each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow.compute as pc

from recpipe.contracts.events import KINDS
from recpipe.training.dataset import Ratings

KIND_RATING = {"browse": 3, "cart": 4, "purchase": 5}  # the rating objective's target for an event-only pair
# The retrieval objective weighs an event-only pair by its kind (a rating weighs 1). Training tries
# each setting and keeps the one with the best validation Recall@10 (``retrieval.train_retrieval``).
EVENT_WEIGHTS: dict[str, tuple[float, float, float]] = {  # browse, cart, purchase
    "as ratings": (1.0, 1.0, 1.0),
    "by intent": (0.3, 0.6, 1.0),
    "recent first": (2.0, 3.0, 4.0),  # what shoppers do now outweighs what they rated
}


@dataclass(frozen=True)
class EventsUsed:
    hours: list[str]  # the delivery hours the events dataset had read (its manifest)
    rows: int  # rows of the events dataset
    added: int  # interactions added (customer, product) pairs
    by_kind: dict[str, int]  # of those, by their furthest kind
    visitors: int  # rows without a customer
    unknown_customers: int  # rows of customers the training dataset does not have
    unknown_products: int
    already_rated: int  # pairs the ratings hold already

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"hours": len(self.hours), "first_hour": min(self.hours, default=None),
                               "last_hour": max(self.hours, default=None)}


def add_events(data: Ratings, events: Any, hours: list[str]) -> tuple[Ratings, EventsUsed]:
    """``data`` with the events' new (customer, product) pairs appended; ``events``: an Arrow
    table with ``customer_number``, ``product_code``, ``kind`` and ``event_time``."""
    n = events.num_rows
    visitor = pc.is_null(events["customer_number"]).to_numpy(zero_copy_only=False).astype(bool)
    number = pc.fill_null(events["customer_number"], -1).to_numpy(zero_copy_only=False).astype(np.int64)
    customers = data.users["customerNumber"].to_numpy().astype(np.int64)
    products = np.array(data.items["productCode"].to_pylist(), dtype=object)
    user = _rows(customers, number)
    code = np.array(events["product_code"].to_pylist(), dtype=object)
    item = _rows(products, code)
    kind = np.array([KINDS.index(k) for k in events["kind"].to_pylist()], dtype=np.int64)
    when = events["event_time"].cast("int64").to_numpy(zero_copy_only=False) if n else np.zeros(0, np.int64)
    usable = (user >= 0) & (item >= 0)
    known_pairs = set(zip(data.user.tolist(), data.item.tolist(), strict=True))
    best: dict[tuple[int, int], tuple[int, int]] = {}  # pair -> (furthest kind, first time)
    rated = 0
    for u, i, k, t in zip(user[usable].tolist(), item[usable].tolist(), kind[usable].tolist(), when[usable].tolist(),
                          strict=True):
        if (u, i) in known_pairs:
            rated += 1
            continue
        kept = best.get((u, i))
        best[(u, i)] = (k, t) if kept is None else (max(kept[0], k), min(kept[1], t))
    used = EventsUsed(hours=sorted(hours), rows=n, added=len(best),
                      by_kind={KINDS[k]: sum(1 for kk, _ in best.values() if kk == k) for k in range(len(KINDS))},
                      visitors=int(visitor.sum()), unknown_customers=int(((user < 0) & ~visitor).sum()),
                      unknown_products=int(((item < 0) & (user >= 0)).sum()), already_rated=rated)
    if not best:
        return data, used
    pairs = sorted(best.items(), key=lambda kv: (kv[1][1], kv[0]))  # by first time: their order
    new_user = np.array([p[0][0] for p in pairs], np.int64)
    new_item = np.array([p[0][1] for p in pairs], np.int64)
    new_rating = np.array([KIND_RATING[KINDS[p[1][0]]] for p in pairs], np.int8)
    order = data.order if data.order is not None else np.full(len(data), -1, np.int64)
    after = (int(order.max()) if len(order) else -1) + 1 + np.arange(len(pairs), dtype=np.int64)
    new_kind = np.array([p[1][0] for p in pairs], np.int8)
    kind = data.kind if data.kind is not None else np.full(len(data), -1, np.int8)
    return replace(data, user=np.concatenate([data.user, new_user]), item=np.concatenate([data.item, new_item]),
                   rating=np.concatenate([data.rating, new_rating]), order=np.concatenate([order, after]),
                   kind=np.concatenate([kind, new_kind])), used


def weights(kind: np.ndarray | None, per_kind: tuple[float, float, float] | None) -> np.ndarray | None:
    """Per interaction row: 1 for a rating, ``per_kind[k]`` for an event of kind k (None: all 1)."""
    if kind is None or per_kind is None:
        return None
    return np.where(kind < 0, 1.0, np.asarray(per_kind, np.float32)[np.maximum(kind, 0)]).astype(np.float32)


def _rows(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The row of each key in ``sorted_keys`` (sorted, unique); -1 where it is not there."""
    if not len(sorted_keys) or not len(keys):
        return np.full(len(keys), -1, np.int64)
    at = np.searchsorted(sorted_keys, keys)
    found = (at < len(sorted_keys)) & (sorted_keys[np.minimum(at, len(sorted_keys) - 1)] == keys)
    return np.where(found, at, -1).astype(np.int64)
