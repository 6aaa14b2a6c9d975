"""Held-out evaluation in numpy: rating error, top-10 ranking, and the baselines beside them.

* RMSE and MAE on the 1–5 scale for the model (3 + 2·cosine, clipped), the global mean and
  the per-item mean of the training split (unseen items get the global mean).
* Recall@10 and NDCG@10 per customer with at least one relevant held-out rating (rating ≥ 4):
  every product is a candidate except those the customer rated in training or validation;
  relevance is binary. Popularity (most-rated in training first) is the ranking baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 10
RELEVANT = 4  # a held-out rating at least this high is a hit worth finding


@dataclass(frozen=True)
class Heldout:
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    n_users: int
    n_items: int
    train: np.ndarray  # row indices
    seen: np.ndarray  # rows of training + validation: not candidates for ranking
    test: np.ndarray


def errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    diff = np.asarray(predicted, np.float64) - actual
    return {"rmse": float(np.sqrt(np.mean(diff**2))), "mae": float(np.mean(np.abs(diff)))}


def predict(user_emb: np.ndarray, item_emb: np.ndarray, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    score = np.einsum("ij,ij->i", user_emb[user], item_emb[item])
    return np.clip(3.0 + 2.0 * score, 1.0, 5.0)


def baselines(h: Heldout) -> dict[str, dict[str, float]]:
    train_r = h.rating[h.train].astype(np.float64)
    mean = float(train_r.mean())
    sums = np.bincount(h.item[h.train], weights=train_r, minlength=h.n_items)
    counts = np.bincount(h.item[h.train], minlength=h.n_items)
    item_mean = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    actual = h.rating[h.test]
    popularity = ranking(_popularity_scores(h), h, shared=True)
    return {"global_mean": errors(np.full(len(actual), mean), actual),
            "item_mean": errors(item_mean[h.item[h.test]], actual),
            "popularity": popularity}


def model_metrics(user_emb: np.ndarray, item_emb: np.ndarray, h: Heldout) -> dict[str, float]:
    out = errors(predict(user_emb, item_emb, h.user[h.test], h.item[h.test]), h.rating[h.test])
    out.update(ranking((user_emb, item_emb), h))
    return out


def _popularity_scores(h: Heldout) -> np.ndarray:
    counts = np.bincount(h.item[h.train], minlength=h.n_items).astype(np.float64)
    return counts - np.arange(h.n_items) * 1e-9  # ties: lower item row first


def ranking(scorer: tuple[np.ndarray, np.ndarray] | np.ndarray, h: Heldout, *, shared: bool = False
            ) -> dict[str, float]:
    """Mean Recall@K and NDCG@K; ``scorer`` is (user_emb, item_emb), or with ``shared`` one
    score row used for every customer."""
    test = h.test[h.rating[h.test] >= RELEVANT]
    users = np.unique(h.user[test])
    if len(users) == 0:
        return {"recall_at_10": float("nan"), "ndcg_at_10": float("nan"), "users": 0}
    row_of = np.full(h.n_users, -1, dtype=np.int64)
    row_of[users] = np.arange(len(users))
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    chunk = max(1, 20_000_000 // max(h.n_items, 1))
    recall_sum = ndcg_sum = 0.0
    seen_u, seen_i = h.user[h.seen], h.item[h.seen]
    rel_u, rel_i = h.user[test], h.item[test]
    for lo in range(0, len(users), chunk):
        block = users[lo:lo + chunk]
        if shared:
            scores = np.repeat(np.asarray(scorer, np.float64).reshape(1, -1), len(block), axis=0)
        else:
            user_emb, item_emb = scorer
            scores = user_emb[block] @ item_emb.T
        in_block = (row_of[seen_u] >= lo) & (row_of[seen_u] < lo + len(block))
        scores[row_of[seen_u[in_block]] - lo, seen_i[in_block]] = -np.inf
        relevant = np.zeros(scores.shape, dtype=bool)
        in_block = (row_of[rel_u] >= lo) & (row_of[rel_u] < lo + len(block))
        relevant[row_of[rel_u[in_block]] - lo, rel_i[in_block]] = True
        k = min(K, h.n_items)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        hits = np.take_along_axis(relevant, top, 1)
        n_rel = relevant.sum(1)
        recall_sum += float((hits.sum(1) / n_rel).sum())
        dcg = (hits * discount[:k]).sum(1)
        ideal = np.cumsum(discount)[np.minimum(n_rel, K) - 1]
        ndcg_sum += float((dcg / ideal).sum())
    return {"recall_at_10": recall_sum / len(users), "ndcg_at_10": ndcg_sum / len(users), "users": len(users)}
