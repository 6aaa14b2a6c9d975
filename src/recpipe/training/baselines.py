"""Rankers the model is judged against, fitted on the same training interactions (numpy).

* popularity: most-bought first, the same list for everyone;
* EASE (Steck, WWW 2019): an item-item linear model in closed form,
  ``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` and a zero diagonal; a customer's scores are
  their history times B. λ is chosen on the validation interactions. A strong simple model,
  but it needs a history: customers seen only through features get nothing from it;
* the generator's oracle, where the data come from ``recpipe source init``: the shop's own
  choice model, made again from the spec in the data manifest (``source/choices.py``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from recpipe import ranking

EASE_MAX_ITEMS = 10_000  # its matrices are n_items² float32: 400 MB each at this size
EASE_LAMBDAS = (1.0, 10.0, 50.0, 200.0, 500.0, 1000.0)
PAIR_CHUNK = 1_000_000  # co-occurrence pairs counted at once (about 50 MB of index arrays)


def cooccurrence(user: np.ndarray, item: np.ndarray, n_items: int, rows: np.ndarray | None = None) -> np.ndarray:
    """XᵀX of the binary customer × product matrix of the distinct ``(user, item)`` pairs (of
    ``rows`` of them, if given): how many customers have both products (the diagonal: how many
    have each), as float32 (counts are exact up to 16.7 million customers). Pairs are counted
    ``PAIR_CHUNK`` at a time, by sorting, so nothing products²-sized is made but the result, and
    nothing per rating but the ids sorted by customer — not even those when the pairs come
    so, as training's rows do: then the chunks are read through ``rows`` where they lie. Where
    a chunk ends is found from per-customer sums."""
    if not ranking.in_customer_order(user, rows):
        order = np.argsort(user, kind="stable") if rows is None else rows[np.argsort(user[rows], kind="stable")]
        user, item, rows = user[order], item[order], None
        del order
    n = len(user) if rows is None else len(rows)

    def part(a: np.ndarray, lo: int, hi: int) -> np.ndarray:  # the pairs lo..hi-1's values of ``a``
        return a[lo:hi] if rows is None else a[rows[lo:hi]]

    counts = np.bincount(part(user, 0, n)).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # each of a customer's rows meets every row of that customer: ``counts[c]`` pairs a row
    pairs = np.cumsum(counts * counts)  # pairs up to and including each customer
    gram = np.zeros(n_items * n_items, dtype=np.float32)
    lo = 0
    while lo < n:
        hi = _chunk_end(lo, int(part(user, lo, lo + 1)[0]), n, counts, start, pairs)
        u = part(user, lo, hi)
        rep = counts[u]
        a = np.repeat(part(item, lo, hi), rep)
        first = np.repeat(start[u], rep)
        offset = np.arange(len(a)) - np.repeat(np.cumsum(rep) - rep, rep)
        at = first + offset  # the other pair of each: the same customer's rows, in place order
        b = item[at] if rows is None else item[rows[at]]
        del first, offset, at
        keys, found = np.unique(a.astype(np.int64) * n_items + b, return_counts=True)
        gram[keys] += found
        lo = hi
    return gram.reshape(n_items, n_items)


def _reload(kept: Any, gram: np.ndarray) -> None:
    """Read the gram ``kept`` in a file back over ``gram``'s memory."""
    from recpipe.errors import InternalError

    kept.seek(0)
    if kept.readinto(gram.data.cast("B")) != gram.nbytes:
        raise InternalError(f"the EASE gram came back short from {kept.name!r}",
                            hint="the temporary directory's disk may be full (TMPDIR)")


def _chunk_end(lo: int, c: int, n: int, counts: np.ndarray, start: np.ndarray, pairs: np.ndarray) -> int:
    """The row after the last whose pairs, counted from row ``lo`` (customer ``c``'s), stay within
    ``PAIR_CHUNK`` (at least one row; ``n`` rows in all): the customer where the sum passes it,
    then the row within them."""
    before = int(pairs[c - 1]) if c else 0
    done = before + (lo - int(start[c])) * int(counts[c])  # pairs of the rows before ``lo``
    last = int(np.searchsorted(pairs, done + PAIR_CHUNK, side="right"))  # first customer not whole
    if last >= len(counts):
        return n
    ahead = done + PAIR_CHUNK - (int(pairs[last - 1]) if last else 0)  # pairs left for ``last``'s rows
    return max(lo + 1, int(start[last]) + ahead // int(counts[last]))


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """EASE's B for one λ, in float32 (on the 1M-rating shop float32 ranked exactly as float64),
    made in ``gram``'s own memory: ``gram`` is used up (pass a copy to keep it). ``gram + λI`` is
    symmetric positive definite, so P comes from its Cholesky factor (torch), each written over
    the matrix before it: at 5,000 products one matrix of 100 MB instead of three (numpy's
    general inverse took 0.77 GB beside the matrix and 5.6 s; the same P within 1e-6). LAPACK
    works on column-major matrices: torch is handed the transposed view, which for a symmetric
    matrix is the same matrix, so it needs no copy of it (given the row-major one, it made one
    per call: 115 MB more at 5,000 products)."""
    from recpipe.training.model import torch

    t = torch.from_numpy(gram).mT
    gram.reshape(-1)[::len(gram) + 1] += lam
    torch.linalg.cholesky(t, out=t)
    torch.cholesky_inverse(t, out=t)
    gram /= -np.diag(gram)[None, :]
    np.fill_diagonal(gram, 0.0)
    return gram


def history_scorer(weights: np.ndarray, user: np.ndarray, item: np.ndarray, n_users: int) -> ranking.Scorer:
    """Scores = each customer's binary history (``user``/``item`` pairs) times ``weights``."""
    order = np.argsort(user, kind="stable")
    u, it = user[order], item[order]
    counts = np.bincount(u, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def score(rows: np.ndarray) -> np.ndarray:
        x = np.zeros((len(rows), len(weights)), dtype=weights.dtype)
        n = counts[rows]
        r = np.repeat(np.arange(len(rows)), n)
        pos = np.repeat(start[rows], n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        x[r, it[pos]] = 1.0
        return x @ weights

    return score


def ease(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, validation: ranking.Holdout,
         rows: np.ndarray | None = None) -> tuple[Callable[[np.ndarray, np.ndarray], ranking.Scorer], dict[str, Any]]:
    """EASE fitted on the training pairs (``rows`` of them, if given: read where they lie) with the
    λ that ranks the validation pairs best; each λ's ranking reads the validation customers'
    training pairs (``validation``'s seen pairs). Returns a factory
    ``(history_user, history_item) -> scorer`` and what was chosen."""
    gram = cooccurrence(user, item, n_items, rows)
    tried: dict[str, float] = {}
    # one products² matrix in memory: the gram waits in a temporary file while each λ's B is
    # made over it (100 MB at 5,000 products; reading it back takes a fraction of a second)
    with tempfile.TemporaryFile(prefix="recpipe-gram-") as kept:
        kept.write(gram.data.cast("B"))
        for lam in EASE_LAMBDAS:
            _reload(kept, gram)
            scorer = history_scorer(ease_weights(gram, lam), validation.seen_user, validation.seen_item, n_users)
            tried[str(lam)] = ranking.evaluate(scorer, validation)["recall_at_10"]
        best_lam = max(EASE_LAMBDAS, key=lambda lam: tried[str(lam)])  # the first of equals, as before
        _reload(kept, gram)
    weights = ease_weights(gram, best_lam)
    return (lambda hu, hi: history_scorer(weights, hu, hi, n_users)), {"lambda": best_lam,
                                                                       "validation_recall_by_lambda": tried}


def oracle(data: Any) -> tuple[ranking.Scorer | None, str]:
    """The generator's oracle for ``data`` (training.dataset.Ratings), or None and why not."""
    found, why = _truth(data)
    if found is None:
        return None, why
    u, i, model = found
    item_t = np.ascontiguousarray(model.item[i].T)
    return (lambda rows: model.user[u[rows]] @ item_t), ""


def next_item_oracle(data: Any) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray] | None, str]:
    """The generator's next-item oracle for ``data``: ``(user rows, histories of item rows) ->
    scores``, the choice model plus the walk from each latest product (``source.sequences``)."""
    found, why = _truth(data)
    if found is None:
        return None, why
    u, i, model = found
    if model.sequence is None:
        return None, "the shop was generated before shoppers' sequences were"
    from recpipe.source.sequences import next_item_oracle as score

    def scores(rows: np.ndarray, history: np.ndarray) -> np.ndarray:
        mapped = np.where(history >= 0, i[np.maximum(history, 0)], -1)
        return score(model.logits(u[rows]), model.sequence, mapped)[:, i]

    return scores, ""


def _truth(data: Any) -> tuple[tuple[np.ndarray, np.ndarray, Any] | None, str]:
    """Each data row's generator row (users, items) and the choice model, or None and why not."""
    generator = data.manifest.generator or {}
    from recpipe.errors import InputError
    from recpipe.source.generate import recorded_choice_model

    try:
        truth = recorded_choice_model(generator) if generator.get("ranking_oracle") else None
    except InputError as exc:
        return None, exc.message
    if truth is None:
        return None, "the data do not come from recpipe's generator (or from an older one)"
    numbers, codes, model = truth
    users = _rows_of(numbers, data.users["customerNumber"].to_numpy())  # arrays: 650,000 customers at 10M
    item_row = {c: k for k, c in enumerate(codes)}
    items = np.array([item_row.get(c, -1) for c in data.items["productCode"].to_pylist()], dtype=np.int64)
    if users.min(initial=0) < 0 or items.min(initial=0) < 0:
        return None, "the data hold customers or products the generator did not make"
    return (users, items, model), ""


def _rows_of(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row of each ``wanted`` value in ``keys`` (distinct), -1 where it is not there."""
    if len(keys) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    rows = order[np.minimum(np.searchsorted(keys, wanted, sorter=order), len(keys) - 1)]
    return np.where(keys[rows] == wanted, rows, -1).astype(np.int64)
