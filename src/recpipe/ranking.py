"""Top-K ranking metrics in numpy: Recall@K, NDCG@K and catalog coverage.

Every customer with at least one held-out product is ranked over the whole catalog minus
what they already have (their "seen" pairs); a held-out product found in the top K is a hit.
Scores come from a function of a block of customer rows, so any ranker fits: two towers
(``user_emb[rows] @ item_emb.T``), popularity (one row for all), EASE, the generator's oracle.
Used by training (its evaluation) and by the synthetic shop (the oracle's figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

K = 10
Scorer = Callable[[np.ndarray], np.ndarray]  # customer rows (m,) -> scores (m, n_items)
BLOCK_CELLS = 8_000_000  # scores held at once (64 MB of float64)
BLOCK = 1_000_000  # pairs taken at once where a pass over all of them would copy them


@dataclass(frozen=True)
class Holdout:
    """What is to be found (``relevant``) and what is already known (``seen``), as pairs of
    customer and product rows."""

    n_users: int
    n_items: int
    seen_user: np.ndarray
    seen_item: np.ndarray
    relevant_user: np.ndarray
    relevant_item: np.ndarray

    @property
    def users(self) -> np.ndarray:
        """Customers with something to find: the ones the metrics average over."""
        return np.unique(self.relevant_user)


def embeddings(user_emb: np.ndarray, item_emb: np.ndarray) -> Scorer:
    """Score = dot product of the customer's and the product's embeddings."""
    item_t = np.ascontiguousarray(item_emb.T)
    return lambda rows: user_emb[rows] @ item_t


def shared(scores: np.ndarray) -> Scorer:
    """The same scores for every customer (e.g. popularity)."""
    row = np.asarray(scores, np.float64).reshape(1, -1)
    return lambda rows: np.repeat(row, len(rows), axis=0)


def popularity(item: np.ndarray, n_items: int) -> np.ndarray:
    """Times each product occurs in ``item`` (the training pairs); ties: lower row first."""
    return np.bincount(item, minlength=n_items).astype(np.float64) - np.arange(n_items) * 1e-9


def evaluate(scorer: Scorer, h: Holdout, k: int = K) -> dict[str, Any]:
    """Mean Recall@k and NDCG@k over the customers with held-out products, and the share of
    the catalog that appears in at least one of their top-k lists."""
    users = h.users
    if len(users) == 0 or h.n_items == 0:
        return {"recall_at_10": float("nan"), "ndcg_at_10": float("nan"), "coverage": float("nan"), "users": 0}
    k = min(k, h.n_items)
    row_of = np.full(h.n_users, -1, dtype=np.int64)
    row_of[users] = np.arange(len(users))
    seen_row, rel_row = row_of[h.seen_user], row_of[h.relevant_user]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)
    block = max(1, BLOCK_CELLS // h.n_items)
    recall, ndcg = np.empty(len(users)), np.empty(len(users))
    shown = np.zeros(h.n_items, dtype=bool)
    for lo in range(0, len(users), block):
        hi = min(lo + block, len(users))
        scores = np.array(scorer(users[lo:hi]), dtype=np.float64)
        mask = (seen_row >= lo) & (seen_row < hi)
        scores[seen_row[mask] - lo, h.seen_item[mask]] = -np.inf
        relevant = np.zeros(scores.shape, dtype=bool)
        mask = (rel_row >= lo) & (rel_row < hi)
        relevant[rel_row[mask] - lo, h.relevant_item[mask]] = True
        top = top_k(scores, k)
        listed = np.take_along_axis(scores, top, 1) > -np.inf  # a customer may have < k candidates
        shown[top[listed]] = True
        hits = np.take_along_axis(relevant, top, 1) & listed
        n_rel = relevant.sum(1)
        recall[lo:hi] = hits.sum(1) / n_rel
        ndcg[lo:hi] = (hits * discount).sum(1) / ideal[np.minimum(n_rel, k) - 1]
    return {"recall_at_10": float(recall.mean()), "ndcg_at_10": float(ndcg.mean()),
            "coverage": float(shown.mean()), "users": len(users),
            "ci95": {"recall_at_10": interval(recall), "ndcg_at_10": interval(ndcg)}}


def interval(values: np.ndarray) -> list[float]:
    """The normal 95% interval of the mean of per-customer ``values`` (how far the mean of
    another sample of as many customers could fall)."""
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    mean = float(values.mean())
    return [mean - half, mean + half]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def target_ranks(scores: np.ndarray, target: np.ndarray, k: int = K) -> np.ndarray:
    """Per row, the 1-based place of its ``target`` column among the row's k best, 0 if not
    among them (next-item Hit@k: rank > 0; MRR@k: 1 / rank)."""
    found = top_k(scores, k) == target[:, None]
    return np.where(found.any(axis=1), found.argmax(axis=1) + 1, 0)


def customer_quantiles(user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per pair, its place among the same customer's pairs in a random order, as a quantile
    ``(position + 0.5) / count`` in (0, 1). ``< f`` holds out about a share f of each customer's
    pairs and never a customer's only pair (1 pair: 0.5; 5 pairs: 0.1, 0.3, ..., 0.9). Pairs
    in customer order (the training dataset's) are done whole customers ``BLOCK`` pairs at a
    time: the same draws and quantiles, without five arrays of every pair beside them (0.4 GB
    at 10M ratings)."""
    counts = np.bincount(user)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if not in_customer_order(user):
        order = np.lexsort((rng.random(len(user)), user))
        position = np.empty(len(user), dtype=np.int64)
        position[order] = np.arange(len(user)) - starts[user[order]]
        return (position + 0.5) / counts[user]
    out = np.empty(len(user), dtype=np.float64)
    lo = 0
    while lo < len(user):
        hi = min(lo + BLOCK, len(user))
        hi = int(starts[user[hi - 1]] + counts[user[hi - 1]])  # to the end of the last customer
        u = user[lo:hi]
        order = np.lexsort((rng.random(hi - lo), u))  # the draws of one call for all, in the same order
        position = np.empty(hi - lo, dtype=np.int64)
        position[order] = np.arange(lo, hi) - starts[u[order]]
        out[lo:hi] = (position + 0.5) / counts[u]
        lo = hi
    return out


def in_customer_order(user: np.ndarray, rows: np.ndarray | None = None, chunk: int = BLOCK, *,
                      then: np.ndarray | None = None) -> bool:
    """Whether the pairs (of ``rows``) are in customer order (and, given ``then``, each
    customer's in ``then``'s order, ties as they lie), checked a chunk at a time."""
    n = len(user) if rows is None else len(rows)
    for lo in range(0, max(n - 1, 0), chunk):
        at = slice(lo, lo + chunk + 1) if rows is None else rows[lo:lo + chunk + 1]
        du = np.diff(user[at])
        if (du < 0).any() or (then is not None and ((du == 0) & (np.diff(then[at]) < 0)).any()):
            return False
    return True
