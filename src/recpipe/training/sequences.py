"""Interactions in time order, and what the session model learns and is judged on.

Each customer's interactions with a known first order (``Ratings.order``) form their sequence.
A *next-item example* is one interaction (the target) with the ``MAX_RECENT`` products the same
customer took before it, oldest first: what the session encoder reads at serving time.
``next_item`` ranks every product for such examples (leaving out what the customer had already
and the history itself) and reports Hit@10 and MRR@10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recpipe.contracts.limits import MAX_RECENT
from recpipe.ranking import BLOCK, in_customer_order, target_ranks
from recpipe.training.dataset import row_type

K = 10


@dataclass(frozen=True)
class Sequences:
    """Each customer's interactions in time order: per customer (user row) where their
    sequence starts among the entries and how long it is (0 without a known order). An entry
    is an interaction row: ``rows[entry]``, or the entry itself when ``rows`` is None, as for
    the training dataset as read (``reading.read_ratings``: rows by customer, then time). Then
    nothing is held per interaction at all; otherwise ``rows`` and each row's ``position`` in
    its customer's sequence (-1: no known order). At 10M ratings those two were 65 MB."""

    start: np.ndarray  # per user row
    length: np.ndarray  # per user row
    rows: np.ndarray | None = None  # per entry: its interaction row (None: the entry is the row)
    position: np.ndarray | None = None  # per interaction row, with ``rows``

    @classmethod
    def of(cls, user: np.ndarray, order: np.ndarray) -> Sequences:
        n_users = int(user.max()) + 1 if len(user) else 0
        if in_customer_order(user, then=order):  # -1 (never ordered) first: as reading lays the rows out
            length = np.zeros(n_users, dtype=np.int64)
            for lo in range(0, len(user), BLOCK):  # not a copy of every ordered row's customer
                u, o = user[lo:lo + BLOCK], order[lo:lo + BLOCK]
                length += np.bincount(u[o >= 0], minlength=n_users)
            # a customer's ordered rows come last among theirs
            start = np.searchsorted(user, np.arange(n_users), side="right") - length
            kind = row_type(len(user))  # int32 per customer while it fits: 5 MB less at 650,000
            return cls(start.astype(kind), length.astype(kind))
        known = np.flatnonzero(order >= 0)
        rows = known[np.lexsort((order[known], user[known]))].astype(row_type(len(user)))
        del known
        length = np.bincount(user[rows], minlength=n_users)
        start = np.cumsum(length) - length
        kind = row_type(len(rows))
        within = np.arange(len(rows), dtype=kind)
        within -= np.repeat(start.astype(kind), length)  # each entry's place in its customer's sequence
        # int16 while every sequence is shorter than 32,768
        position = np.full(len(user), -1, dtype=np.int16 if length.max(initial=0) < 2**15 else np.int32)
        position[rows] = within
        return cls(start, length, rows, position)

    def row(self, entries: np.ndarray) -> np.ndarray:
        """The interaction rows of these entries."""
        return entries if self.rows is None else self.rows[entries]

    def place(self, targets: np.ndarray, user: np.ndarray) -> np.ndarray:
        """Each target row's place in its customer's sequence (-1: it has none)."""
        if self.position is not None:
            return self.position[targets]
        u = user[targets]
        pos = targets - self.start[u]
        return np.where((pos >= 0) & (pos < self.length[u]), pos, -1)

    def last(self, users: np.ndarray | None = None, *, back: int = 1) -> np.ndarray:
        """Each customer's latest interaction row that has one before it (of ``users``, if
        given), in customer order; ``back=2``: the one before their latest (the validation
        target of a leave-last-out protocol), and so on."""
        who = np.flatnonzero(self.length >= back + 1)  # the target is theirs and has one before it
        if users is not None:
            who = who[np.isin(who, users)]
        return self.row(self.start[who] + self.length[who] - back)

    def histories(self, targets: np.ndarray, user: np.ndarray, item: np.ndarray,
                  length: int = MAX_RECENT) -> np.ndarray:
        """Per target row, the item rows of the ``length`` interactions before it, oldest first,
        left-padded with -1 (targets without a known order get an empty history)."""
        out = np.full((len(targets), length), -1, dtype=np.int64)
        pos = self.place(targets, user)
        at = self.start[user[targets]] + pos  # the target's entry (where pos >= 0)
        for back in range(1, length + 1):
            ok = pos >= back
            out[ok, length - back] = item[self.row(at[ok] - back)]
        return out


@dataclass(frozen=True)
class Examples:
    """Next-item examples: whose (user row), what came next (item row), and the history."""

    user: np.ndarray
    item: np.ndarray
    history: np.ndarray  # (n, MAX_RECENT) item rows, -1 padded on the left

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def of(cls, s: Sequences, targets: np.ndarray, user: np.ndarray, item: np.ndarray) -> Examples:
        history = s.histories(targets, user, item)
        keep = (history >= 0).any(axis=1)  # an example needs something before it
        # int64: a few hundred thousand at most, and torch's losses take int64 targets
        return cls(user[targets][keep].astype(np.int64), item[targets][keep].astype(np.int64), history[keep])

    def take(self, idx: np.ndarray) -> Examples:
        return Examples(self.user[idx], self.item[idx], self.history[idx])


Scores = Callable[[np.ndarray], np.ndarray]  # example indices (b,) -> scores (b, n_items)
SCORE_CELLS = 1_000_000  # example × product scores ranked at once (8 MB of float64, whatever the catalog)


def pairs_of(user: np.ndarray, item: np.ndarray, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(user, item)`` pairs of these ``customers`` (user rows), looked for ``BLOCK`` pairs at
    a time: what ranking a few thousand examples needs of every interaction, with no mask or copy
    the size of all of them beside it (0.1 GB at 10M ratings)."""
    wanted = np.unique(customers)
    rows = [lo + np.flatnonzero(np.isin(user[lo:lo + BLOCK], wanted)) for lo in range(0, len(user), BLOCK)]
    found = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return user[found], item[found]


def next_item(scores: Scores, ex: Examples, n_items: int, seen_user: np.ndarray | None = None,
              seen_item: np.ndarray | None = None, block: int | None = None) -> dict[str, float]:
    """Hit@10 and MRR@10 of ``ex``: each example ranks every product except its history and,
    for known customers, the ``seen`` pairs of its customer (what they had already). ``block``
    examples are ranked at once (default: ``SCORE_CELLS`` scores)."""
    if not len(ex):
        return {"hit_at_10": float("nan"), "mrr_at_10": float("nan"), "examples": 0}
    block = block or max(1, SCORE_CELLS // max(n_items, 1))
    seen: dict[int, np.ndarray] = {}
    if seen_user is not None and seen_item is not None:
        seen_user, seen_item = pairs_of(seen_user, seen_item, ex.user)  # only the examples' customers' pairs matter
        order = np.argsort(seen_user, kind="stable")
        users, starts = np.unique(seen_user[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        seen = {int(u): seen_item[order[a:b]] for u, a, b in zip(users, starts, ends, strict=True)}
    hits = rr = 0.0
    for lo in range(0, len(ex), block):
        idx = np.arange(lo, min(lo + block, len(ex)))
        s = np.array(scores(idx), dtype=np.float64)
        for j, i in enumerate(idx):
            h = ex.history[i]
            s[j, h[h >= 0]] = -np.inf
            known = seen.get(int(ex.user[i]))
            if known is not None:
                s[j, known[known != ex.item[i]]] = -np.inf
        rank = target_ranks(s, ex.item[idx], K)
        hits += float((rank > 0).sum())
        rr += float(np.where(rank > 0, 1.0 / np.maximum(rank, 1), 0.0).sum())
    return {"hit_at_10": hits / len(ex), "mrr_at_10": rr / len(ex), "examples": len(ex)}
