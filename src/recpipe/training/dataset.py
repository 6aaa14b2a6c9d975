"""The training dataset as training holds it (``Ratings``, read by ``reading.py``), and its splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from recpipe.contracts.dataset import DatasetManifest
from recpipe.inference.features import (
    ITEM_CATEGORICAL,
    ITEM_NUMERIC,
    USER_CATEGORICAL,
    USER_NUMERIC,
)

USER_COLUMNS = ("customerNumber", *USER_CATEGORICAL, *USER_NUMERIC)
ITEM_COLUMNS = ("productCode", *ITEM_CATEGORICAL, *ITEM_NUMERIC)
COLUMNS = (*USER_COLUMNS, *ITEM_COLUMNS, "productRating")


@dataclass
class Ratings:
    """Ratings as indices into the user and item tables, each table holding raw features. As
    read, the rows are in customer order, each customer's in time order (those never ordered
    first), else by product; rows events add come after them (``training.events``)."""

    users: pa.Table  # customerNumber + user features, one row per customer, sorted
    items: pa.Table  # productCode + item features, one row per product, sorted
    user: np.ndarray  # row in ``users`` per rating (int32 as read; int64 where events were added)
    item: np.ndarray  # row in ``items`` per rating (``item_type``: int16 below 32,768 products)
    rating: np.ndarray  # int8, 1..5 (a byte a rating: 10 MB at 10M, not 40)
    manifest: DatasetManifest  # what the ETL published
    # per rating, its time among its customer's ratings (as read: its place in their sequence,
    # int32); -1: never ordered
    order: np.ndarray | None = None
    kind: np.ndarray | None = None  # int8 per row: -1 a rating, else an event's furthest kind (training.events.KINDS)

    def __len__(self) -> int:
        return len(self.item)  # not the rating: a retrieval fit sets it aside (``runs.folded``)


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


Rows = np.ndarray | slice  # interaction rows: an array of them, or ``every(n)``: all n, nothing per row


def every(n: int) -> slice:
    """All ``n`` interaction rows, held as nothing (a slice indexes a view; 43 MB less than an
    array of them at 10M ratings)."""
    return slice(0, n)


def count(rows: Rows) -> int:
    """How many interaction rows ``rows`` names."""
    return len(range(rows.stop)[rows]) if isinstance(rows, slice) else len(rows)


def item_type(n: int) -> type[np.signedinteger]:
    """The integer type of rows into ``n`` products: int16 while it fits (a catalog below 32,768:
    21 MB less than int32 at 10M ratings). Torch indexes with int32 or int64 only: batches
    widen theirs (``objectives``)."""
    return np.int16 if n < 2**15 else np.int32


def row_type(n: int) -> type[np.signedinteger]:
    """The integer type of rows into ``n`` interactions: int32 while it fits (half the memory)."""
    return np.int32 if n < 2**31 else np.int64


def split(n: int, *, seed: int, validation: float = 0.1, test: float = 0.1) -> Split:
    """A seeded random split of rating rows; validation and test get at least one row each."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test))
    n_val = max(1, round(n * validation))
    return Split(train=np.sort(order[n_test + n_val:]), validation=np.sort(order[n_test:n_test + n_val]),
                 test=np.sort(order[:n_test]))


@dataclass(frozen=True)
class InteractionSplit:
    """Rows of interactions (rated pairs) for the retrieval objective: each warm customer's
    interactions split at random into training, validation and test shares; cold customers'
    interactions are all held out (they are seen only through their features)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    cold: np.ndarray
    cold_users: np.ndarray  # user rows

    def describe(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test),
                "cold_start": len(self.cold), "cold_start_customers": len(self.cold_users)}


def interaction_split(data: Ratings, *, seed: int, validation: float = 0.1, test: float = 0.2,
                      cold: float = 0.05, latest: np.ndarray | None = None,
                      before_latest: np.ndarray | None = None) -> InteractionSplit:
    """Seeded: ``cold`` of the customers held out whole; of every other customer's interactions
    about ``test`` for the test and ``validation`` for early stopping (a customer's only
    interaction always stays in training). ``latest``: interaction rows that go to the test
    whatever the draw (each customer's latest: the next-item evaluation's targets);
    ``before_latest``: rows that go to the validation (each customer's one before: what the
    session encoder is chosen on, as leave-last-out protocols do)."""
    from recpipe import ranking

    rng = np.random.default_rng(seed)
    n_users = len(data.users)
    n_cold = min(round(cold * n_users), n_users - 1)
    cold_users = np.sort(rng.choice(n_users, n_cold, replace=False)) if n_cold > 0 else np.zeros(0, np.int64)
    is_cold = np.isin(data.user, cold_users)
    q = ranking.customer_quantiles(data.user, rng)
    rows = np.arange(len(data), dtype=row_type(len(data)))
    warm = ~is_cold
    forced = np.zeros(len(data), dtype=bool)
    if latest is not None:
        forced[latest] = True
    checking = np.zeros(len(data), dtype=bool)
    if before_latest is not None:
        checking[before_latest] = True
    checking &= ~forced
    return InteractionSplit(train=rows[warm & (q >= test + validation) & ~forced & ~checking],
                            validation=rows[warm & (((q >= test) & (q < test + validation) & ~forced) | checking)],
                            test=rows[warm & ((q < test) | forced) & ~checking], cold=rows[is_cold],
                            cold_users=cold_users)
