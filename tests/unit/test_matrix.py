"""In-process exact ranking (vectors.matrix): pgvector's order — cosine, best first, equal
scores by id — with the same filters; tested against pgvector itself in tests/integration."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.vectors.matrix import ItemMatrix


def matrix(vectors: np.ndarray, ids: list[str] | None = None, in_stock: list[bool] | None = None) -> ItemMatrix:
    ids = ids or [f"P{i:03d}" for i in range(len(vectors))]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    vectors = np.asarray(vectors, np.float32)[order]
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    stock = np.ones(len(ids), bool) if in_stock is None else np.asarray(in_stock)[order]
    ids = [ids[i] for i in order]
    return ItemMatrix(ids, {c: i for i, c in enumerate(ids)}, vectors, unit, stock)


def brute(m: ItemMatrix, query: np.ndarray, k: int, leave_out: set[str], in_stock: bool) -> list[str]:
    q = query / np.linalg.norm(query)
    scored = [(-float(m.unit[i] @ q), c) for i, c in enumerate(m.ids)
              if c not in leave_out and (m.in_stock[i] or not in_stock)]
    return [c for _, c in sorted(scored)[:k]]


def test_best_first_by_cosine_not_by_length() -> None:
    m = matrix(np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 1.0]]))
    got = m.top(np.array([[1.0, 0.2]]), 3, [m.rows([])])[0]
    assert [s.id for s in got] == ["P000", "P001", "P002"]
    assert abs(got[0].score - 1 / np.sqrt(1.04)) < 1e-6


def test_equal_scores_are_ordered_by_id_even_across_the_kth_place() -> None:
    same = [[1.0, 0.0]] * 5
    m = matrix(np.array([*same, [0.0, 1.0]]), ids=["E", "C", "A", "D", "B", "Z"])
    assert [s.id for s in m.top(np.array([[1.0, 0.0]]), 2, [m.rows([])])[0]] == ["A", "B"]
    assert [s.id for s in m.top(np.array([[1.0, 0.0]]), 2, [m.rows(["A"])])[0]] == ["B", "C"]


def test_left_out_and_out_of_stock_items_never_come_back_and_short_lists_stay_short() -> None:
    m = matrix(np.eye(4), in_stock=[True, False, True, True])
    got = m.top(np.ones((2, 4)), 10, [m.rows(["P000", "NOT-LOADED"]), m.rows([])], in_stock=True)
    assert [s.id for s in got[0]] == ["P002", "P003"]
    assert [s.id for s in got[1]] == ["P000", "P002", "P003"]
    assert m.top(np.ones((1, 4)), 2, [m.rows(m.ids)])[0] == []


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
def test_the_same_top_k_as_sorting_everything(n: int, k: int, seed: int, in_stock: bool) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.integers(-2, 3, size=(n, 4)).astype(float)  # small integers: many exact ties
    vectors[np.abs(vectors).sum(axis=1) == 0] = 1.0
    m = matrix(vectors, in_stock=list(rng.random(n) < 0.8))
    queries = rng.normal(size=(3, 4))
    leave = [set(rng.choice(m.ids, size=min(n, 3), replace=False).tolist()) for _ in range(3)]
    got = m.top(queries, k, [m.rows(s) for s in leave], in_stock=in_stock)
    for q, s, g in zip(queries, leave, got, strict=True):
        assert [x.id for x in g] == brute(m, q, k, s, in_stock)
