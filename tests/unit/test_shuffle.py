"""``training.shuffle.Shuffled``: every row once per epoch, in a seeded order that looks random."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.training.shuffle import Shuffled


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), batch=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_the_order_takes_every_row_once_whatever_the_batches(n: int, batch: int, seed: int) -> None:
    order = Shuffled(n, np.random.default_rng(seed))
    rows = np.concatenate([order.rows(start, start + batch) for start in range(0, n, batch)])
    assert rows.dtype == np.int64
    assert np.sort(rows).tolist() == list(range(n))
    assert rows.tolist() == order.rows(0, n).tolist()


def test_the_order_repeats_with_the_seed_and_differs_between_epochs() -> None:
    rng = np.random.default_rng(7)
    first, second = Shuffled(100_000, rng), Shuffled(100_000, rng)  # two epochs of one fit
    again = Shuffled(100_000, np.random.default_rng(7))
    assert first.rows(0, 100_000).tolist() == again.rows(0, 100_000).tolist()
    assert np.mean(first.rows(0, 100_000) == second.rows(0, 100_000)) < 0.001


def test_a_batch_is_spread_over_every_row() -> None:
    """Rows lie in customer order: a batch of neighbours would be a few customers' purchases."""
    n = 1_000_003
    rows = Shuffled(n, np.random.default_rng(3)).rows(0, n)
    assert abs(np.corrcoef(np.arange(n), rows)[0, 1]) < 0.01
    for start in (0, 500_000, n - 2048):
        batch = rows[start:start + 2048]
        # a uniform sample of 2,048 of n rows: its mean within ~5 standard errors of n / 2
        assert abs(batch.mean() - n / 2) < 5 * n / np.sqrt(12 * 2048)
        # over the 1,001 stretches of 1,000 rows as a uniform sample is: ~871 of them met, expected
        assert len(np.unique(batch // 1000)) > 800
