"""Ranking metrics, the per-customer split and the EASE baseline, on cases worked out by hand
or against a dense computation of the same formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe import ranking
from recpipe.training import baselines


def _holdout() -> ranking.Holdout:
    # 3 customers, 12 products. Customer 0 has 0 and 1, must find 2 and 3; customer 1 has 0,
    # must find 5; customer 2 has nothing held out (not averaged over).
    return ranking.Holdout(3, 12, np.array([0, 0, 1, 2]), np.array([0, 1, 0, 4]),
                           np.array([0, 0, 1]), np.array([2, 3, 5]))


def test_recall_ndcg_and_coverage_by_hand() -> None:
    h = _holdout()
    item_emb = np.eye(12)
    user_emb = np.zeros((3, 12))
    user_emb[0, [0, 2, 7]] = [9.0, 0.5, 0.7]  # 0 is seen: 7 first, 2 second; 3 is a zero among zeros
    user_emb[1, 4:12] = np.linspace(1.0, 0.3, 8)  # 4, 5, ...: product 5 second
    got = ranking.evaluate(ranking.embeddings(user_emb, item_emb), h, k=2)
    assert got["users"] == 2
    # customer 0: 1 of 2 found at rank 2 -> recall 1/2, DCG 1/log2(3), ideal 1 + 1/log2(3)
    # customer 1: found at rank 2 -> recall 1, DCG 1/log2(3), ideal 1
    assert got["recall_at_10"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["ndcg_at_10"] == pytest.approx(((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1 / math.log2(3)) / 2)
    assert got["coverage"] == pytest.approx(4 / 12)  # {7, 2} and {4, 5}


def test_popularity_ranks_the_same_list_for_everyone_minus_what_they_have() -> None:
    h = _holdout()
    scores = ranking.popularity(np.array([0, 0, 0, 1, 1, 3]), 12)  # 0, 1, 3, then 2, 4, 5 ... by row
    got = ranking.evaluate(ranking.shared(scores), h, k=3)
    # customer 0: 3, 2, 4 -> both found; customer 1: 1, 3, 2 -> 5 not found
    assert got["recall_at_10"] == pytest.approx(0.5)
    assert got["coverage"] == pytest.approx(4 / 12)  # {3, 2, 4} and {1, 3, 2}


def test_a_customer_with_fewer_candidates_than_k_lists_only_those() -> None:
    h = ranking.Holdout(1, 3, np.array([0, 0]), np.array([0, 1]), np.array([0]), np.array([2]))
    got = ranking.evaluate(ranking.shared(np.array([3.0, 2.0, 1.0])), h)
    assert got["recall_at_10"] == 1.0 and got["coverage"] == pytest.approx(1 / 3)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=30), seed=st.integers(0, 2**16))
def test_customer_quantiles_hold_out_a_share_and_never_the_only_pair(sizes: list[int], seed: int) -> None:
    user = np.repeat(np.arange(len(sizes)), sizes)
    q = ranking.customer_quantiles(user, np.random.default_rng(seed))
    for u, n in enumerate(sizes):
        mine = np.sort(q[user == u])
        assert np.allclose(mine, (np.arange(n) + 0.5) / n)  # a permutation of the quantiles
        assert (mine < 0.2).sum() == math.ceil(0.2 * n - 0.5)  # about a fifth; none of 1 or 2
        if n <= 2:
            assert (mine >= 0.2).all()
    # in customer order, a few customers at a time: the same draws give the same quantiles
    shuffled = np.random.default_rng(seed).permutation(len(user))
    unordered = np.empty(len(user))
    unordered[shuffled] = ranking.customer_quantiles(user[shuffled], np.random.default_rng(seed))
    blocked = ranking.customer_quantiles(user, np.random.default_rng(seed))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ranking, "BLOCK", 5)
        assert np.array_equal(ranking.customer_quantiles(user, np.random.default_rng(seed)), blocked)
    assert np.allclose(np.sort(unordered), np.sort(blocked))


def _dense(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    x = np.zeros((n_users, n_items))
    x[user, item] = 1.0
    return x


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), n_users=st.integers(1, 30), n_items=st.integers(1, 15))
def test_cooccurrence_is_xtx(seed: int, n_users: int, n_items: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random((n_users, n_items)) < 0.3
    user, item = np.nonzero(x)
    gram = baselines.cooccurrence(user, item, n_items)  # np.nonzero's pairs come in (user, item) order
    assert np.array_equal(gram, x.T.astype(float) @ x.astype(float))
    shuffled = rng.permutation(len(user))  # and in no order: sorted first, the same counts
    assert ranking.in_customer_order(user) and (len(set(user)) < 2 or not ranking.in_customer_order(user[::-1]))
    assert np.array_equal(baselines.cooccurrence(user[shuffled], item[shuffled], n_items), gram)
    grouped = np.lexsort((rng.random(len(user)), user))  # by customer, products in no order: read as they lie
    assert ranking.in_customer_order(user[grouped])
    assert np.array_equal(baselines.cooccurrence(user[grouped], item[grouped], n_items), gram)
    # some of the pairs, read through their rows where they lie (sorted rows) or sorted first
    rows = np.flatnonzero(rng.random(len(user)) < 0.6)
    some = x.copy()
    some[user, item] = False
    some[user[rows], item[rows]] = True
    expected = some.T.astype(float) @ some.astype(float)
    assert np.array_equal(baselines.cooccurrence(user, item, n_items, rows), expected)
    assert np.array_equal(baselines.cooccurrence(user, item, n_items, rng.permutation(rows)), expected)


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
def test_pairs_are_known_in_customer_order_only_when_every_chunk_and_seam_is(chunk: int) -> None:
    user = np.array([0, 0, 1, 1, 1, 3, 3])
    then = np.array([1, 4, 0, 2, 9, 2, 5])  # within each customer, in order
    assert ranking.in_customer_order(user, chunk=chunk) and ranking.in_customer_order(user, chunk=chunk, then=then)
    for bad in range(1, len(user)):  # each pair swapped with the one before it: out of order across customers
        order = np.arange(len(user))
        order[[bad - 1, bad]] = order[[bad, bad - 1]]
        assert ranking.in_customer_order(user[order], chunk=chunk) == (user[bad - 1] == user[bad])
        assert not ranking.in_customer_order(user[order], chunk=chunk, then=then[order])  # and within one


@pytest.mark.parametrize("chunk", [1, 2, 7, 50, 401])
def test_cooccurrence_in_chunks_gives_the_same(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Chunks end inside a customer, at one, and past the last (customers without rows too)."""
    rng = np.random.default_rng(3)
    user, item = np.nonzero(rng.random((50, 20)) < 0.4)
    user[user == 7] = 8  # a customer with no rows between two
    order = rng.permutation(len(user))  # in no particular order
    user, item = user[order].astype(np.int32), item[order].astype(np.int32)
    whole = baselines.cooccurrence(user, item, 20)
    ordered = np.lexsort((item, user))
    rows = np.sort(rng.choice(len(user), len(user) // 2, replace=False))
    some = baselines.cooccurrence(user[ordered][rows], item[ordered][rows], 20)
    monkeypatch.setattr(baselines, "PAIR_CHUNK", chunk)
    assert np.array_equal(baselines.cooccurrence(user, item, 20), whole)
    assert np.array_equal(baselines.cooccurrence(user[ordered], item[ordered], 20, rows), some)  # read in place


def test_ease_is_the_closed_form_and_scores_each_history() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((40, 8)) < 0.35).astype(float)
    user, item = np.nonzero(x)
    lam = 5.0
    gram = baselines.cooccurrence(user, item, 8)
    weights = baselines.ease_weights(gram, lam)
    assert np.shares_memory(weights, gram)  # made in the gram's memory: one products² matrix
    # Steck's solution: argmin ||X - XB||² + λ||B||² subject to diag(B) = 0
    p = np.linalg.inv(x.T @ x + lam * np.eye(8))
    expected = np.eye(8) - p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(weights, expected)
    score = baselines.history_scorer(weights, user, item, 40)
    rows = np.array([3, 0, 39])
    assert np.allclose(score(rows), x[rows] @ weights)


def test_ease_picks_the_lambda_that_ranks_validation_best() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((200, 30)) < (np.linspace(0.05, 0.5, 30)[None, :])
    user, item = np.nonzero(x)
    test = ranking.customer_quantiles(user, rng) < 0.2
    val = ranking.Holdout(200, 30, user[~test], item[~test], user[test], item[test])
    make, chosen = baselines.ease(user[~test], item[~test], 200, 30, val)
    _, by_rows = baselines.ease(user, item, 200, 30, val, np.flatnonzero(~test))  # the same pairs, by row
    assert by_rows == chosen
    tried = chosen["validation_recall_by_lambda"]
    assert set(tried) == {str(v) for v in baselines.EASE_LAMBDAS}
    assert tried[str(chosen["lambda"])] == max(tried.values())
    assert ranking.evaluate(make(user[~test], item[~test]), val)["recall_at_10"] == tried[str(chosen["lambda"])]


def test_generator_rows_are_found_by_value_and_missing_ones_are_minus_one() -> None:
    keys = np.array([105, 103, 109, 101])
    assert baselines._rows_of(keys, np.array([109, 101, 104, 105, 103, 110, 0])).tolist() == [2, 3, -1, 0, 1, -1, -1]
    assert baselines._rows_of(keys[:0], np.array([1])).tolist() == [-1]
