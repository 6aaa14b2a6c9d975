"""The held-out metrics on cases small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recpipe import ranking
from recpipe.training.evaluate import Heldout, baselines, errors, ranking_of


def test_errors() -> None:
    assert errors(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == {"rmse": pytest.approx(math.sqrt(0.5)),
                                                                   "mae": pytest.approx(0.5)}


def _heldout() -> Heldout:
    # 2 users, 12 items. Rows 0-2 training, rows 3-5 test.
    user = np.array([0, 0, 1, 0, 0, 1])
    item = np.array([0, 1, 0, 2, 3, 5])
    rating = np.array([5, 1, 4, 5, 2, 4], dtype=np.float32)
    train = np.array([0, 1, 2])
    return Heldout(user, item, rating, 2, 12, train, train, np.array([3, 4, 5]))


def test_ranking_by_hand() -> None:
    h = _heldout()
    # user 0: relevant held-out {2} (item 3 was rated 2); user 1: relevant {5}
    item_emb = np.eye(12, dtype=np.float32)
    user_emb = np.zeros((2, 12), dtype=np.float32)
    user_emb[0, [0, 2]] = [1.0, 0.5]  # item 0 is seen (excluded): item 2 ranks first
    user_emb[1, 4:12] = np.linspace(1.0, 0.3, 8)  # items 4..11 in order: item 5 ranks 2nd
    got = ranking_of(ranking.embeddings(user_emb, item_emb), h)
    assert got["users"] == 2
    assert got["recall_at_10"] == pytest.approx(1.0)
    assert got["ndcg_at_10"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    user_emb[1] = 0
    user_emb[1, 11] = 1  # item 5 now ties with 9 other zeros; lower item row first → rank 6 of 11
    got = ranking_of(ranking.embeddings(user_emb, item_emb), h)
    assert got["recall_at_10"] == pytest.approx(1.0)


def test_baselines_by_hand() -> None:
    h = _heldout()
    base = baselines(h)
    mean = (5 + 1 + 4) / 3
    # item means: item 0 → 4.5, item 1 → 1; test items 2, 3, 5 unseen → the global mean
    expected = np.array([mean, mean, mean])
    assert base["global_mean"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((expected - [5, 2, 4]) ** 2))))
    assert base["item_mean"] == base["global_mean"]
    # popularity: item 0 (2 ratings), 1, then the rest in row order. User 0 has seen 0 and 1:
    # item 2 comes first. User 1 has seen 0: 1, 2, 3, 4, then item 5 fifth.
    pop = base["popularity"]
    assert pop["recall_at_10"] == pytest.approx(1.0)
    assert pop["ndcg_at_10"] == pytest.approx((1.0 + 1 / math.log2(6)) / 2)
