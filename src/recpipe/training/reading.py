"""Reading the training dataset into ``dataset.Ratings``, checked, in memory that grows with
the ratings by a few dozen bytes each.

Every check runs before any training: a dataset that is missing, empty, has one customer,
NaNs or nulls in features, or ratings outside 1–5 is refused with what, where and how to fix.

The files are read a few thousand at a time (``adapters.scan``: a dataset of every file costs
about 35 KB a file before a row is read). What is kept of a group: per rating its customer,
product, rating and time as numpy arrays; the features once per customer and once per product.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from recpipe.adapters.base import Lake
from recpipe.adapters.scan import data_files, scan
from recpipe.contracts.dataset import (
    DATASET,
    ORDER_COLUMNS,
    PARTITION_KEY,
    TRAINING_SCHEMA,
    DatasetManifest,
)
from recpipe.errors import InputError, ServiceError
from recpipe.progress import SILENT, Progress
from recpipe.training.dataset import (
    COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    Ratings,
    item_type,
    row_type,
)
from recpipe.training.memory import give_back

RATING_RANGE = (1, 5)
NO_DAY = np.iinfo(np.int32).min  # a rating never ordered
LAST_LINE = np.iinfo(np.int64).max  # an order line not known: after the day's known lines
BLOCK_ROWS = 1_000_000  # rows sorted, placed or copied at once (no temporary of every row)
FIX = "re-run `recpipe etl run` (it quarantines such rows) or fix the dataset"


def read_ratings(lake: Lake, progress: Progress = SILENT) -> Ratings:
    """Read and check ``<lake>/ratings_ml_training``; refuse anything training cannot use."""
    location = lake.location(DATASET)
    manifest = DatasetManifest.read(lake)
    empty = InputError(f"the training dataset at {location} is empty",
                       hint="the source has no ratings: add some (`recpipe source add-ratings`), then `recpipe etl run`")
    part = ds.partitioning(pa.schema([(PARTITION_KEY, pa.int32())]), flavor="hive")
    with _reading(location):
        progress.status(f"listing {location}")
        files = data_files(lake, DATASET)
        if not files:
            raise empty
        schema = lake.dataset(DATASET, files[:1], partitioning=part).schema
        ordered = [c for c in ORDER_COLUMNS if c in schema.names]  # older datasets have none
        columns = [c for c in COLUMNS if c != PARTITION_KEY] + ordered + [PARTITION_KEY]
        parts = _Parts(ordered=bool(ordered))
        progress.status(f"reading the training dataset from {location}")
        for table in scan(lake, DATASET, columns, files, partitioning=part, schema=schema, progress=progress):
            check(table, location)
            parts.add(table)
    if parts.rows == 0:
        raise empty
    if manifest.rows != parts.rows:
        raise InputError(f"the training dataset at {location} has {parts.rows:,} rows, its manifest says "
                         f"{manifest.rows:,}", hint="it changed while being read: run `recpipe train` again")
    give_back()  # what reading freed, before the parts are joined (0.3 GB at 10M ratings)
    data = parts.ratings(manifest, location)
    del parts
    give_back()
    return data


@contextmanager
def _reading(location: str) -> Iterator[None]:
    try:
        yield
    except (pa.ArrowInvalid, FileNotFoundError, OSError) as exc:
        message = str(exc).splitlines()[0]
        if "AWS Error" in message:  # S3 failed (after its retries): not the data's fault
            raise ServiceError(f"cannot read the training dataset at {location}: {message}",
                               hint="retry once S3 answers") from exc
        if "No match for FieldRef" in message:
            raise InputError(f"the training dataset at {location} lacks a column the model needs: {message}",
                             hint=FIX) from exc
        raise InputError(f"cannot read the training dataset at {location}: {message}", hint=FIX) from exc


def check(table: pa.Table, location: str) -> None:
    """Nulls where the contract forbids them, NaN/inf numbers, ratings out of range."""
    nullable = {f.name for f in TRAINING_SCHEMA if f.nullable}
    for name in COLUMNS:
        column = table[name]
        if name not in nullable and column.null_count:
            _refuse(table, pc.is_null(column), f"{column.null_count:,} rows with a NULL {name}", location)
        if pa.types.is_floating(column.type):
            bad = pc.fill_null(pc.invert(pc.is_finite(column)), False)
            count = pc.sum(bad).as_py() or 0
            if count:
                _refuse(table, bad, f"{count:,} rows with {name} NaN or infinite", location)
    low, high = RATING_RANGE
    rating = table["productRating"]
    out = pc.fill_null(pc.or_(pc.less(rating, low), pc.greater(rating, high)), False)
    count = pc.sum(out).as_py() or 0
    if count:
        _refuse(table, out, f"{count:,} ratings outside {low}-{high}", location)


def _refuse(table: pa.Table, mask: Any, problem: str, location: str) -> None:
    first = table.filter(mask).slice(0, 1).to_pylist()[0]
    example = f"customer {first[PARTITION_KEY]}, product {first['productCode']}"
    raise InputError(f"the training dataset at {location} has {problem} (first: {example})", hint=FIX)


class _Parts:
    """What is kept of each group of files, and the ``Ratings`` they make."""

    def __init__(self, *, ordered: bool) -> None:
        self.ordered = ordered
        self.rows = 0
        self.customer: list[np.ndarray] = []
        self.product: list[np.ndarray] = []  # the product's place in ``codes`` (first seen first)
        self.rating: list[np.ndarray] = []
        self.day: list[np.ndarray] = []  # int32 days since 1970
        self.line: list[np.ndarray] = []  # an order line's id (``_narrow``: int32 where it fits)
        self.users: list[pa.Table] = []
        self.items: list[pa.Table] = []
        self.codes: dict[str, int] = {}

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        customer = _numpy(table[PARTITION_KEY]).astype(np.int32)
        _, first = np.unique(customer, return_index=True)
        self.users.append(table.select(list(USER_COLUMNS)).take(pa.array(first)))
        encoded = table["productCode"].combine_chunks().dictionary_encode()
        names = encoded.dictionary.to_pylist()
        new = [k for k, code in enumerate(names) if code not in self.codes]
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        if new:
            _, at = np.unique(indices, return_index=True)  # the first row of each of the group's products
            self.items.append(table.select(list(ITEM_COLUMNS)).take(pa.array(at[new])))
            for k in new:
                self.codes[names[k]] = len(self.codes)
        local = np.array([self.codes[code] for code in names], dtype=item_type(len(self.codes)))
        self.customer.append(customer)
        self.product.append(local[indices])
        self.rating.append(_numpy(table["productRating"]).astype(np.int8))  # checked: 1..5
        if self.ordered:  # a null day is NO_DAY; a null line is LAST_LINE, last in its day
            day = pc.fill_null(pc.cast(table["orderDate"], pa.int32()), NO_DAY)
            self.day.append(_numpy(day).astype(np.int32))
            self.line.append(_narrow(_numpy(pc.fill_null(pc.cast(table["orderLine"], pa.int64()), LAST_LINE))))

    def ratings(self, manifest: DatasetManifest, location: str) -> Ratings:
        users = pa.concat_tables(self.users)
        numbers, first = np.unique(_numpy(users[PARTITION_KEY]), return_index=True)
        users = users.take(pa.array(first))
        if len(numbers) < 2:
            raise InputError(f"the training dataset at {location} has ratings from {len(numbers)} customer; "
                             "a recommender needs at least 2", hint="train on a dataset with more customers")
        if self.rows < 10:
            raise InputError(f"the training dataset at {location} has {self.rows} ratings; at least 10 are "
                             "needed for training, validation and test splits", hint="add ratings, then `recpipe etl run`")
        items = pa.concat_tables(self.items)
        by_code = pc.sort_indices(items["productCode"]).to_numpy()
        place = np.empty(len(by_code), dtype=item_type(len(by_code)))  # a product's row, by its place in ``codes``
        place[by_code] = np.arange(len(by_code))
        items = items.take(pa.array(by_code))
        # each list of parts is let go a part at a time as it is joined: the peak is the whole and one part
        user = _joined(self.customer, np.int32, lambda part: np.searchsorted(numbers, part))
        item = _joined(self.product, place.dtype, lambda part: place[part])
        rating = _joined(self.rating, np.int8)
        day = _joined(self.day, np.int32) if self.ordered else None
        order = _sequence_order(user, item, day, _lines(self.line) if self.ordered else None)
        timed = _taken(day != NO_DAY, order) if day is not None else None  # all the places need of the days
        del day
        user = _taken(user, order)  # one column at a time: each old one let go before the next is made
        item = _taken(item, order)
        rating = _taken(rating, order)
        del order
        return Ratings(users, items, user, item, rating, manifest, _places(user, timed) if timed is not None else None)


def _joined(parts: list[np.ndarray], dtype: Any, each: Any = None) -> np.ndarray:
    """The parts (each through ``each``, if given) as one array of ``dtype``; the list is emptied
    as they are copied, each part let go once it is in."""
    joined = np.empty(sum(len(p) for p in parts), dtype=dtype)
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        joined[at:at + len(part)] = part if each is None else each(part)
        at += len(part)
    return joined


def _taken(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values[order]``, the old array let go by the caller (a block of ``order`` at a time: no
    index temporary of every row)."""
    out = np.empty(len(order), dtype=values.dtype)
    for lo in range(0, len(order), BLOCK_ROWS):
        out[lo:lo + BLOCK_ROWS] = values[order[lo:lo + BLOCK_ROWS]]
    return out


WIDE_UNKNOWN = np.iinfo(np.int32).max  # LAST_LINE in a part held as int32


def _narrow(line: np.ndarray) -> np.ndarray:
    """A part's order lines as int32 where every known line fits (``LAST_LINE`` as int32's
    largest, still after them all), else as they are (int64): 43 MB less at 10M ratings where
    they fit (the generated shops' line ids, up to 1.9e10, do not)."""
    known = line[line != LAST_LINE]
    if known.size and (known.min() < np.iinfo(np.int32).min or known.max() >= WIDE_UNKNOWN):
        return line  # int64 already (cast so by the caller): not copied
    return np.where(line == LAST_LINE, WIDE_UNKNOWN, line).astype(np.int32)


def _lines(parts: list[np.ndarray]) -> np.ndarray:
    """The order lines as one array (the list is emptied): int32 if every part is (they sort as
    the int64 lines would), else int64 with the int32 parts' unknown widened back to ``LAST_LINE``."""
    if all(p.dtype == np.int32 for p in parts):
        return _joined(parts, np.int32)
    return _joined(parts, np.int64, lambda p: np.where(p == WIDE_UNKNOWN, LAST_LINE, p.astype(np.int64)) if p.dtype == np.int32 else p)


def _numpy(column: Any) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False) if isinstance(column, pa.ChunkedArray | pa.Array) else column


def _sequence_order(user: np.ndarray, item: np.ndarray, day: np.ndarray | None, line: np.ndarray | None
                    ) -> np.ndarray:
    """The rows by customer, then time (the day, then the line within it; the never ordered
    first), then product; without days, by customer, then product. The same as one
    ``np.lexsort`` of every row, sorted a block of customers (about ``BLOCK_ROWS`` rows) at a
    time into an order of ``row_type``: the sort's index and buffers are a block's (at 10M ratings
    a whole sort held 0.2 GB beside the columns)."""
    order = np.empty(len(user), dtype=row_type(len(user)))
    ends = np.cumsum(np.bincount(user))  # per customer, the rows of it and those before it
    first, at = 0, 0
    while first < len(ends):
        last = min(len(ends), max(first + 1, int(np.searchsorted(ends, at + BLOCK_ROWS, side="right"))))
        rows = np.flatnonzero((user >= first) & (user < last))
        keys = (item[rows], user[rows]) if day is None or line is None else \
            (item[rows], line[rows], day[rows], user[rows])
        order[at:at + len(rows)] = rows[np.lexsort(keys)]
        first, at = last, at + len(rows)
    return order


def _places(user: np.ndarray, timed: np.ndarray) -> np.ndarray | None:
    """Per rating (rows in customer, then time order, ``timed`` where it was ordered), its place
    among its customer's ordered ratings (0 the first); -1 where it was never ordered. None
    when no rating was ordered. Made a block at a time (no temporary of every row)."""
    if not timed.any():
        return None
    kind = row_type(len(user))
    ends = np.searchsorted(user, np.arange(int(user[-1]) + 1), side="right")  # per customer, after its last row
    firsts = ends.copy()  # its first ordered row (they come last)
    place = np.empty(len(user), dtype=kind)
    for lo in range(0, len(user), BLOCK_ROWS):
        firsts -= np.bincount(user[lo:lo + BLOCK_ROWS][timed[lo:lo + BLOCK_ROWS]], minlength=len(ends))
    for lo in range(0, len(user), BLOCK_ROWS):
        hi = min(lo + BLOCK_ROWS, len(user))
        block = np.arange(lo, hi, dtype=kind) - firsts[user[lo:hi]].astype(kind)
        block[~timed[lo:hi]] = -1
        place[lo:hi] = block
    return place
