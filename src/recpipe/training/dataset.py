"""The training dataset, read from the lake, checked, and cut into entities and splits.

Every check runs before any training: a dataset that is missing, empty, has one customer,
NaNs or nulls in features, or ratings outside 1–5 is refused with what, where and how to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from recpipe.adapters.base import Lake
from recpipe.contracts.dataset import (
    DATASET,
    ORDER_COLUMNS,
    PARTITION_KEY,
    TRAINING_SCHEMA,
    DatasetManifest,
)
from recpipe.errors import InputError, ServiceError
from recpipe.inference.features import (
    ITEM_CATEGORICAL,
    ITEM_NUMERIC,
    USER_CATEGORICAL,
    USER_NUMERIC,
)

USER_COLUMNS = ("customerNumber", *USER_CATEGORICAL, *USER_NUMERIC)
ITEM_COLUMNS = ("productCode", *ITEM_CATEGORICAL, *ITEM_NUMERIC)
COLUMNS = (*USER_COLUMNS, *ITEM_COLUMNS, "productRating")
NULLABLE = {f.name for f in TRAINING_SCHEMA if f.nullable}
RATING_RANGE = (1, 5)
FIX = "re-run `recpipe etl run` (it quarantines such rows) or fix the dataset"


@dataclass
class Ratings:
    """Ratings as indices into the user and item tables, each table holding raw features."""

    users: pa.Table  # customerNumber + user features, one row per customer, sorted
    items: pa.Table  # productCode + item features, one row per product, sorted
    user: np.ndarray  # int64 row in ``users`` per rating
    item: np.ndarray  # int64 row in ``items`` per rating
    rating: np.ndarray  # float32, 1..5
    manifest: DatasetManifest  # what the ETL published
    order: np.ndarray | None = None  # float64 per rating: when it was first ordered (a sort key); NaN: unknown
    kind: np.ndarray | None = None  # int8 per row: -1 a rating, else an event's furthest kind (training.events.KINDS)

    def __len__(self) -> int:
        return len(self.rating)


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def read_ratings(lake: Lake) -> Ratings:
    """Read and check ``<lake>/ratings_ml_training``; refuse anything training cannot use."""
    location = lake.location(DATASET)
    manifest = DatasetManifest.read(lake)
    part = ds.partitioning(pa.schema([(PARTITION_KEY, pa.int32())]), flavor="hive")
    empty = InputError(f"the training dataset at {location} is empty",
                       hint="the source has no ratings: add some (`recpipe source add-ratings`), then `recpipe etl run`")
    try:
        dataset = lake.dataset(DATASET, partitioning=part)
        if not dataset.files:
            raise empty
        ordered = [c for c in ORDER_COLUMNS if c in dataset.schema.names]  # older datasets have none
        table = dataset.to_table(columns=[c for c in COLUMNS if c != PARTITION_KEY] + ordered + [PARTITION_KEY])
    except (pa.ArrowInvalid, FileNotFoundError, OSError) as exc:
        message = str(exc).splitlines()[0]
        if "AWS Error" in message:  # S3 failed (after its retries): not the data's fault
            raise ServiceError(f"cannot read the training dataset at {location}: {message}",
                               hint="retry once S3 answers") from exc
        if "No match for FieldRef" in message:
            raise InputError(f"the training dataset at {location} lacks a column the model needs: {message}",
                             hint=FIX) from exc
        raise InputError(f"cannot read the training dataset at {location}: {message}", hint=FIX) from exc
    if table.num_rows == 0:
        raise empty
    if manifest.rows != table.num_rows:
        raise InputError(f"the training dataset at {location} has {table.num_rows:,} rows, its manifest says "
                         f"{manifest.rows:,}", hint="it changed while being read: run `recpipe train` again")
    table = table.sort_by([(PARTITION_KEY, "ascending"), ("productCode", "ascending")])
    check(table, location)
    return _index(table, manifest)


def check(table: pa.Table, location: str) -> None:
    """Nulls where the contract forbids them, NaN/inf numbers, ratings out of range, one customer."""
    for name in COLUMNS:
        column = table[name]
        if name not in NULLABLE and column.null_count:
            _refuse(table, pc.is_null(column), f"{column.null_count:,} rows with a NULL {name}", location)
        if pa.types.is_floating(column.type):
            bad = pc.invert(pc.is_finite(column))
            count = pc.sum(pc.fill_null(bad, False)).as_py() or 0
            if count:
                _refuse(table, pc.fill_null(bad, False), f"{count:,} rows with {name} NaN or infinite", location)
    rating = table["productRating"]
    low, high = RATING_RANGE
    out = pc.or_(pc.less(rating, low), pc.greater(rating, high))
    count = pc.sum(pc.fill_null(out, False)).as_py() or 0
    if count:
        _refuse(table, pc.fill_null(out, False), f"{count:,} ratings outside {low}-{high}", location)
    customers = pc.count_distinct(table[PARTITION_KEY]).as_py()
    if customers < 2:
        raise InputError(f"the training dataset at {location} has ratings from {customers} customer; "
                         "a recommender needs at least 2", hint="train on a dataset with more customers")
    if table.num_rows < 10:
        raise InputError(f"the training dataset at {location} has {table.num_rows} ratings; at least 10 are "
                         "needed for training, validation and test splits", hint="add ratings, then `recpipe etl run`")


def _refuse(table: pa.Table, mask: Any, problem: str, location: str) -> None:
    first = table.filter(mask).slice(0, 1).to_pylist()[0]
    example = f"customer {first[PARTITION_KEY]}, product {first['productCode']}"
    raise InputError(f"the training dataset at {location} has {problem} (first: {example})", hint=FIX)


def _index(table: pa.Table, manifest: DatasetManifest) -> Ratings:
    customer = table[PARTITION_KEY].to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], customer[1:] != customer[:-1]]))  # sorted
    user = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(customer))))
    users = table.select(list(USER_COLUMNS)).take(pa.array(starts))

    codes = table["productCode"].combine_chunks().dictionary_encode()
    order = np.argsort(np.array(codes.dictionary.to_pylist(), dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    item = rank[codes.indices.to_numpy()]
    _, first = np.unique(item, return_index=True)  # first row of each item, in item order
    items = table.select(list(ITEM_COLUMNS)).take(pa.array(first))
    return Ratings(users, items, user.astype(np.int64), item,
                   table["productRating"].to_numpy().astype(np.float32), manifest, _order(table))


def _order(table: pa.Table) -> np.ndarray | None:
    """Per rating, its place in time by its first order (the day, then the line within the
    day) as an int64 rank; -1 where unknown. None when no rating has an order."""
    if "orderDate" not in table.column_names:
        return None
    day = pc.cast(table["orderDate"], pa.int32()).to_numpy(zero_copy_only=False).astype(np.float64)
    known = np.isfinite(day)
    if not known.any():
        return None
    line = table["orderLine"].to_numpy(zero_copy_only=False).astype(np.float64)
    line = np.where(np.isfinite(line), line, np.inf)
    rows = np.flatnonzero(known)
    rank = np.full(len(day), -1, dtype=np.int64)
    rank[rows[np.lexsort((line[rows], day[rows]))]] = np.arange(len(rows))
    return rank


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
    rows = np.arange(len(data))
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
