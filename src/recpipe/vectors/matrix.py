"""The loaded item vectors as one matrix, to rank many query vectors at once in process.

The streaming transformation asks a new question for nearly every event (each click changes the
session's vector): about 500 nearest-neighbour queries per batch. Through pgvector each costs an
index scan plus its filters (~0.2 ms on 2 cores, the batch's largest cost: bench/stream.py). For a
catalog of up to ``EXACT_MAX_ITEMS`` products the batch is ranked here instead, exactly, against
the same vectors pgvector holds (read once per load): one matrix product, the same cosine
similarity, the same filters (in stock, what each query leaves out) and the same order (best
first, equal scores by id) as pgvector's exact search. Larger catalogs stay with the HNSW index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recpipe.contracts import vectors as schema
from recpipe.contracts.models import ModelTables
from recpipe.contracts.vectors import Scored
from recpipe.vectors.connect import has_table

# 500 queries x 10,000 items: ~45 ms of numpy on 2 cores, about half what pgvector's index took
# for 500 queries on 200 items (bench/stream.py); at 20,000 items ~80 ms: the index's turn.
EXACT_MAX_ITEMS = 10_000
_CHUNK = 256  # queries scored at once (bounds the score matrix: 256 x 10,000 floats = 10 MB)


@dataclass(frozen=True)
class ItemMatrix:
    ids: list[str]  # sorted: equal scores keep id order
    index: dict[str, int]  # product code -> row
    vectors: np.ndarray  # (items, dims) float32, as loaded
    unit: np.ndarray  # (items, dims) float32, each row unit length (a zero vector stays zero)
    in_stock: np.ndarray  # (items,) bool: quantity_in_stock > 0

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, codes: Iterable[str]) -> np.ndarray:
        """The rows of those ``codes`` that have a vector."""
        index = self.index
        return np.fromiter((index[c] for c in codes if c in index), dtype=np.int64)

    def top(self, queries: np.ndarray, k: int, leave_out: Sequence[np.ndarray], *,
            in_stock: bool = False) -> list[list[Scored]]:
        """Per query vector, the ``k`` items of highest cosine similarity, without the rows in
        its ``leave_out`` (``rows()``; and, with ``in_stock``, those out of stock)."""
        rows, scores = self.best(queries, k, leave_out, in_stock=in_stock)
        ids = self.ids
        return [[Scored(ids[i], s) for i, s in zip(r.tolist(), c.tolist(), strict=True) if s != -np.inf]
                for r, c in zip(rows, scores, strict=True)]

    def best(self, queries: np.ndarray, k: int, leave_out: Sequence[np.ndarray], *,
             in_stock: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``top`` as arrays: rows (n × k) and their scores, best first; a score of -inf marks
        a place left empty (fewer than ``k`` items to give)."""
        queries = np.asarray(queries, dtype=np.float64)
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        queries = (queries / np.where(norms > 0, norms, 1.0)).astype(np.float32)  # float32, as pgvector computes
        k = min(k, len(self.ids))
        rows, scores = np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k), np.float32)
        for start in range(0, len(queries), _CHUNK):
            chunk = self.unit_scores(queries[start:start + _CHUNK], leave_out[start:start + _CHUNK], in_stock)
            rows[start:start + _CHUNK], scores[start:start + _CHUNK] = _best(chunk, k)
        return rows, scores

    def unit_scores(self, queries: np.ndarray, leave_out: Sequence[np.ndarray], in_stock: bool) -> np.ndarray:
        scores = queries @ self.unit.T
        if in_stock and not self.in_stock.all():
            scores[:, ~self.in_stock] = -np.inf
        if leave_out:
            cols = np.concatenate(leave_out)
            scores[np.repeat(np.arange(len(leave_out)), [len(c) for c in leave_out]), cols] = -np.inf
        return scores


def _best(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top ``k`` columns and scores, best first, equal scores by column (id order)."""
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    best = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -best), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    best = np.take_along_axis(best, order, axis=1)
    # a tie across the k-th place may have kept the later id: those rows are ranked in full
    tied = np.flatnonzero((scores >= best[:, -1:]).sum(axis=1) > k) if k < scores.shape[1] else np.empty(0, int)
    for row in tied:
        full = np.lexsort((np.arange(scores.shape[1]), -scores[row]))[:k]
        top[row], best[row] = full, scores[row, full]
    return top, best


def read(conn: Any, limit: int | None = None, tables: ModelTables | None = None) -> ItemMatrix | None:
    """A loaded model's item vectors (``tables``; None: the serving model's), run through
    ``VectorQueries.read``; None if none are loaded or there are more than ``limit`` (rank
    those with the index)."""
    items = schema.ITEMS if tables is None else tables.items
    if not has_table(conn, items):
        return None
    count = conn.execute(f"SELECT count(*) FROM {items}").fetchone()[0]
    if count == 0 or count > (EXACT_MAX_ITEMS if limit is None else limit):
        return None
    rows = sorted(conn.execute(f"SELECT id, embedding::real[], coalesce(quantity_in_stock, 0) > 0 "
                               f"FROM {items}").fetchall())  # by id as Python orders text, as query.py does
    vectors = np.asarray([r[1] for r in rows], dtype=np.float32)
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    ids = [r[0] for r in rows]
    unit = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return ItemMatrix(ids, {c: i for i, c in enumerate(ids)}, vectors, unit,
                      np.asarray([r[2] for r in rows], dtype=bool))
