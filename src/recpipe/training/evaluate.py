"""Held-out evaluation in numpy.

Retrieval (the default objective), on the interaction split of ``dataset.interaction_split``:
Recall@10, NDCG@10 and catalog coverage (``recpipe.ranking``) for warm customers (their
held-out interactions; every product they have not bought in training or validation is a
candidate) and for cold-start customers (all their interactions held out; their vector comes
from their features alone), with the baselines of ``baselines.py`` on the same split.

Rating (the seed's objective), on a random split of the ratings:
* RMSE and MAE on the 1–5 scale for the model (3 + 2·cosine, clipped), the global mean and
  the per-item mean of the training split (unseen items get the global mean);
* Recall@10 and NDCG@10 per customer with at least one relevant held-out rating (rating ≥ 4),
  ranking every product not rated in training or validation, against popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recpipe import ranking
from recpipe.training.dataset import InteractionSplit

K = ranking.K
RELEVANT = 4  # rating objective: a held-out rating at least this high is a hit worth finding
VALIDATION_CUSTOMERS = 10_000  # early stopping ranks at most this many customers each epoch
# The test and the cold-start figures rank at most this many customers each (a seeded sample
# beyond, stated in the manifest with each figure's 95% interval): evaluation costs the same at
# 1M ratings as at 100M. At 20,000 customers Recall@10's interval is about ±0.005.
EVALUATION_CUSTOMERS = 20_000


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
    popularity = ranking_of(ranking.shared(ranking.popularity(h.item[h.train], h.n_items)), h)
    return {"global_mean": errors(np.full(len(actual), mean), actual),
            "item_mean": errors(item_mean[h.item[h.test]], actual),
            "popularity": popularity}


def model_metrics(user_emb: np.ndarray, item_emb: np.ndarray, h: Heldout) -> dict[str, float]:
    out = errors(predict(user_emb, item_emb, h.user[h.test], h.item[h.test]), h.rating[h.test])
    out.update(ranking_of(ranking.embeddings(user_emb, item_emb), h))
    return out


def ranking_of(scorer: ranking.Scorer, h: Heldout) -> dict[str, float]:
    """Recall@10 / NDCG@10 / coverage of the held-out ratings ≥ ``RELEVANT``."""
    test = h.test[h.rating[h.test] >= RELEVANT]
    holdout = ranking.Holdout(h.n_users, h.n_items, h.user[h.seen], h.item[h.seen], h.user[test], h.item[test])
    return ranking.evaluate(scorer, holdout)


@dataclass(frozen=True)
class Holdouts:
    """The retrieval split as ranking tasks."""

    validation: ranking.Holdout  # seen: training; at most VALIDATION_CUSTOMERS customers
    test: ranking.Holdout  # seen: training + validation; at most EVALUATION_CUSTOMERS customers
    cold: ranking.Holdout  # seen: nothing
    history_user: np.ndarray  # the test customers' training + validation pairs (what history-based rankers know)
    history_item: np.ndarray
    sample: dict[str, object]  # how many customers the test and the cold-start figures rank, of how many

    @classmethod
    def of(cls, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, s: InteractionSplit,
           seed: int) -> Holdouts:
        rng = np.random.default_rng(seed)
        val, _ = _customers(s.validation, user, VALIDATION_CUSTOMERS, rng)
        test, of_test = _customers(s.test, user, EVALUATION_CUSTOMERS, rng)
        cold, of_cold = _customers(s.cold, user, EVALUATION_CUSTOMERS, rng)
        # what the ranked customers have already (the only pairs ranking reads): a fixed size too
        train = s.train[np.isin(user[s.train], user[val])]
        known = np.concatenate([s.train, s.validation])
        known = np.sort(known[np.isin(user[known], user[test])])
        empty = np.zeros(0, np.int64)
        sample: dict[str, object] = {"customers": EVALUATION_CUSTOMERS, "seed": seed, "test_customers_of": of_test,
                  "cold_start_customers_of": of_cold,
                  "sampled": of_test > EVALUATION_CUSTOMERS or of_cold > EVALUATION_CUSTOMERS}
        test_holdout = ranking.Holdout(n_users, n_items, user[known], item[known], user[test], item[test])
        return cls(ranking.Holdout(n_users, n_items, user[train], item[train], user[val], item[val]), test_holdout,
                   ranking.Holdout(n_users, n_items, empty, empty, user[cold], item[cold]),
                   test_holdout.seen_user, test_holdout.seen_item, sample)

    def score(self, warm: ranking.Scorer, cold: ranking.Scorer | None = None) -> dict[str, object]:
        """Warm-customer figures, and ``cold_start`` ones where the ranker can serve them."""
        out: dict[str, object] = dict(ranking.evaluate(warm, self.test))
        out["cold_start"] = ranking.evaluate(cold, self.cold) if cold is not None else None
        return out


def _customers(rows: np.ndarray, user: np.ndarray, at_most: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``rows`` of at most ``at_most`` customers (a seeded sample of them), and of how many."""
    customers = np.unique(user[rows])
    if len(customers) <= at_most:
        return rows, len(customers)
    keep = rng.choice(customers, at_most, replace=False)
    return rows[np.isin(user[rows], keep)], len(customers)
