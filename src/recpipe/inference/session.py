"""What a shopper is doing now, as a vector: the pooled session encoder (numpy, no torch).

A session is the products a customer or visitor browsed or put in the cart, oldest first.
Its vector is a recency-weighted sum of those products' item embeddings (the watch-history
average of YouTube's candidate generator, Covington et al. 2016): the latest product weighs 1,
the one before ``decay``, then ``decay²``…; a product in the cart weighs ``cart`` times as much;
then a learned ``transform`` (what tends to come after what) and unit length. Training fits
``decay``, ``base`` and ``transform`` on next-item examples (``training.session``).
Only the latest ``MAX_RECENT`` count; products without an embedding (unknown codes, added
after training) are skipped. A known customer's vector is ``base`` times their own (stored
or from their features) plus the session's; a visitor's is the session's alone. The result is
unit-length and 32-d, so pgvector ranks it exactly as it ranks a stored vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recpipe.contracts.events import Activity
from recpipe.contracts.limits import MAX_RECENT

__all__ = ["Activity", "SessionEncoder", "codes"]

@dataclass(frozen=True, eq=False)
class SessionEncoder:
    decay: float = 0.8  # weight of each older product relative to the next one
    cart: float = 1.5  # a product in the cart weighs this many times a browsed one
    base: float = 1.0  # weight of the customer's own vector beside the session's (unit-length both)
    max_recent: int = MAX_RECENT
    transform: np.ndarray | None = None  # dim × dim, applied to the pooled vector (trained); None: identity

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Its parameters as ``towers.npz`` keeps them (``session.*``)."""
        out = {"session.decay": np.array(self.decay, np.float64), "session.cart": np.array(self.cart, np.float64),
               "session.base": np.array(self.base, np.float64),
               "session.max_recent": np.array(self.max_recent, np.int64)}
        if self.transform is not None:
            out["session.transform"] = np.asarray(self.transform, np.float32)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> SessionEncoder | None:
        """The encoder kept in ``towers.npz``; None for towers trained before it was."""
        if "session.decay" not in arrays:
            return None
        transform = arrays.get("session.transform")
        return cls(float(arrays["session.decay"]), float(arrays["session.cart"]), float(arrays["session.base"]),
                   int(arrays["session.max_recent"]), None if transform is None else np.asarray(transform, np.float32))

    def user_vectors(self, own: np.ndarray | None, history: np.ndarray, items: np.ndarray,
                     cart: np.ndarray | None = None, has_own: np.ndarray | None = None) -> np.ndarray:
        """``user_vector`` for many at once: ``history`` holds item rows of ``items`` (n × L,
        oldest first, -1 padded on the left), ``cart`` marks carted ones; ``own`` rows count
        where ``has_own`` (default: every row). A history with no product must not be given."""
        h = history[:, -self.max_recent:]
        mask = h >= 0
        age = np.cumsum(mask[:, ::-1], axis=1)[:, ::-1] - 1  # 0: the latest product
        weights = np.where(mask, self.decay ** np.maximum(age, 0), 0.0)
        if cart is not None:
            weights = weights * np.where(cart[:, -self.max_recent:], self.cart, 1.0)
        stacked = items[np.maximum(h, 0)].astype(np.float64)
        pooled = np.einsum("nl,nld->nd", weights, stacked)
        cancelled = np.linalg.norm(pooled, axis=1) < 1e-6  # opposite products: the latest one speaks
        if cancelled.any():
            pooled[cancelled] = stacked[cancelled, -1]
        if self.transform is not None:
            pooled = pooled @ self.transform.T.astype(np.float64)
        pooled = unit(pooled)
        if own is not None:
            mine = self.base * unit(np.asarray(own, np.float64))
            pooled = pooled + (mine if has_own is None else np.where(has_own[:, None], mine, 0.0))
        return unit(pooled).astype(np.float32)

    def pooled(self, recent: Sequence[Activity], vectors: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The session's unit-length vector; None when no product of it has an embedding (the
        only case: every other session gives a vector)."""
        return self.user_vector(None, recent, vectors)

    def user_vector(self, own: np.ndarray | None, recent: Sequence[Activity],
                    vectors: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The vector to rank with: the customer's own (None for a visitor) moved toward what
        they are doing now; None when neither says anything. ``user_vectors`` for one shopper,
        by product code."""
        known = [a for a in recent if a.product_code in vectors][-self.max_recent:]
        if not known:
            return None if own is None else unit(np.asarray(own, np.float64)).astype(np.float32)
        items = np.stack([np.asarray(vectors[a.product_code]) for a in known])
        mine = None if own is None else np.asarray(own)[None, :]
        return self.user_vectors(mine, np.arange(len(known))[None, :], items,
                                 np.array([[a.kind == "cart" for a in known]]))[0]


def unit(x: np.ndarray) -> np.ndarray:
    """Each vector (the last axis) scaled to unit length; a zero vector stays zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def codes(recent: Sequence[Activity]) -> list[str]:
    """The distinct product codes of a session, in order."""
    return list(dict.fromkeys(a.product_code for a in recent))
