"""The next-item evaluation: each customer's latest interaction (time-ordered leave-last-out),
predicted from the ``MAX_RECENT`` before it, for known customers and for new visitors.

Known customers are the warm ones (their latest interaction was held out of training); new
visitors are the cold-start customers, seen only through their session (no customer number).
Every ranker leaves out the session's products and, for a known customer, what they had
already. Rankers, all on the same examples:

* ``session``: the two towers' vectors with the trained session encoder (what serving does);
* ``without_session``: the same model's stored vector (a visitor: their features alone);
* ``popularity``; EASE (``baselines.ease_weights``, its λ as chosen on validation) on the
  customer's row including the session (a visitor: the session alone); session-kNN (Jannach &
  Ludewig 2017): the 100 training customers whose products are most like the session's
  (cosine), their products weighted by that similarity;
* on a synthetic shop, the generator's next-item oracle (its choice model and walk), and the
  same oracle without the session (the choice model alone): their ratio is what knowing the
  session can add at best on that shop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recpipe import ranking
from recpipe.inference.session import SessionEncoder
from recpipe.training.baselines import EASE_MAX_ITEMS, cooccurrence, ease_weights
from recpipe.training.sequences import Examples, Sequences, next_item

NEIGHBOURS = 100
KNN_MAX_CELLS = 50_000_000  # customers × products held as one dense matrix (EASE's rows, session-kNN)
MAX_EXAMPLES = 5_000  # examples per group at most (a seeded sample beyond)


def evaluate(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, train: np.ndarray,
             seq: Sequences, known: np.ndarray, visitors: np.ndarray, users: np.ndarray, items: np.ndarray,
             encoder: SessionEncoder, ease_lambda: float | None,
             oracle: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """``known``/``visitors``: the target interaction rows; ``users``/``items``: the towers' unit
    vectors (a cold customer's user vector is their features')."""
    x = np.zeros((n_users, n_items), dtype=np.float32) if n_users * n_items <= KNN_MAX_CELLS else None
    if x is not None:
        x[user[train], item[train]] = 1.0
    popular = ranking.popularity(item[train], n_items)
    ease = None
    if ease_lambda is not None and n_items <= EASE_MAX_ITEMS:
        ease = ease_weights(cooccurrence(user, item, n_items, train), ease_lambda)
    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for who, targets in (("known_customers", known), ("new_visitors", visitors)):
        if len(targets) > MAX_EXAMPLES:
            targets = np.sort(rng.choice(targets, MAX_EXAMPLES, replace=False))
        ex = Examples.of(seq, targets, user, item)
        is_known = who == "known_customers"
        seen = (user, item) if is_known else (None, None)
        own = users[ex.user]
        mine = encoder.user_vectors(own if is_known else None, ex.history, items)

        def query(idx: np.ndarray, ex: Examples = ex, is_known: bool = is_known) -> np.ndarray:
            rows = _rows(ex.history[idx], n_items)
            return np.maximum(rows, x[ex.user[idx]]) if is_known and x is not None else rows

        rankers: dict[str, Any] = {
            "session": lambda idx, v=mine: v[idx] @ items.T,
            "without_session": lambda idx, v=own: v[idx] @ items.T,
            "popularity": lambda idx: np.broadcast_to(popular, (len(idx), n_items)),
            "ease": (lambda idx, q=query: q(idx) @ ease) if ease is not None else None,
            "session_knn": (lambda idx, ex=ex, k=is_known: _knn(x, _rows(ex.history[idx], n_items),
                                                                ex.user[idx] if k else None)) if x is not None else None,
        }
        if oracle is not None:
            rankers["oracle"] = lambda idx, ex=ex: oracle(ex.user[idx], ex.history[idx])
            # the generator's taste alone: how much knowing the session can add, at best
            rankers["oracle_without_session"] = lambda idx, ex=ex: oracle(ex.user[idx], np.full_like(ex.history[idx], -1))
        figures: dict[str, Any] = {name: _score(fn, ex, n_items, seen) if fn is not None else
                                   {"skipped": "too large for this evaluation, or no λ was chosen"}
                                   for name, fn in rankers.items()}
        best = max((figures[b]["hit_at_10"] for b in ("ease", "session_knn") if "hit_at_10" in figures[b]),
                   default=float("nan"))
        hit = figures["session"]["hit_at_10"]
        figures["ratios"] = {"vs_without_session": _ratio(hit, figures["without_session"]["hit_at_10"]),
                             "vs_best_of_ease_and_session_knn": _ratio(hit, best)}
        if "oracle" in figures:
            figures["ratios"]["vs_oracle"] = _ratio(hit, figures["oracle"]["hit_at_10"])
            figures["ratios"]["oracle_vs_oracle_without_session"] = _ratio(
                figures["oracle"]["hit_at_10"], figures["oracle_without_session"]["hit_at_10"])
        out[who] = figures
    out["protocol"] = {"target": "each customer's latest interaction (by its first order)",
                       "history": f"the {encoder.max_recent} before it, oldest first", "k": 10,
                       "left_out": "the history; for a known customer, every product they had already",
                       "new_visitors": "the cold-start customers, without their customer number"}
    return out


def _rows(history: np.ndarray, n_items: int) -> np.ndarray:
    out = np.zeros((len(history), n_items), dtype=np.float32)
    r, c = np.nonzero(history >= 0)
    out[r, history[r, c]] = 1.0
    return out


def _knn(x: np.ndarray, sessions: np.ndarray, self_rows: np.ndarray | None) -> np.ndarray:
    norms = np.sqrt(x.sum(1)) + 1e-9
    sims = (sessions @ x.T) / (norms[None, :] * (np.sqrt(sessions.sum(1, keepdims=True)) + 1e-9))
    if self_rows is not None:
        sims[np.arange(len(sims)), self_rows] = 0.0  # not the customer's own history
    k = min(NEIGHBOURS, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.take_along_axis(sims, top, 1)
    out = np.empty((len(sims), x.shape[1]), dtype=np.float32)
    step = max(1, 4_000_000 // (k * x.shape[1]))
    for lo in range(0, len(sims), step):
        out[lo:lo + step] = np.einsum("nk,nki->ni", weights[lo:lo + step], x[top[lo:lo + step]])
    return out


def _score(scores: Any, ex: Examples, n_items: int, seen: tuple[Any, Any]) -> dict[str, Any]:
    got = next_item(scores, ex, n_items, *seen)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in got.items()}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b and np.isfinite(a) and np.isfinite(b) else None
