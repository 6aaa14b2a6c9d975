"""Each interaction's customer held as runs during a fit (``training.runs``): a batch's rows get
the customers the array gave them, and after the fit the arrays are back, equal."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recpipe.training.dataset import Ratings
from recpipe.training.fit import Inputs
from recpipe.training.model import torch
from recpipe.training.runs import UserRuns, folded

lengths = st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40)


@given(lengths, st.integers(min_value=0, max_value=3), st.sampled_from([np.int32, np.int64]))
def test_runs_give_every_row_its_customer(runs: list[int], gap: int, dtype: type) -> None:
    # customers with no rows between runs (gap): a customer's run is found, not counted
    user: np.ndarray = np.repeat(np.arange(len(runs)) * (gap + 1), runs).astype(dtype)
    held = UserRuns.of(user)
    assert held is not None and len(held) == len(user)
    rows = torch.from_numpy(np.random.default_rng(len(user)).permutation(len(user)).astype(np.int32))
    assert torch.equal(held[rows], torch.from_numpy(user)[rows.long()])
    again = held.numpy()
    assert again.dtype == user.dtype and np.array_equal(again, user)


def test_rows_out_of_customer_order_are_not_runs() -> None:
    assert UserRuns.of(np.array([0, 0, 2, 1], np.int32)) is None  # events appended after the rows as read
    assert UserRuns.of(np.zeros(0, np.int32)) is None


def _data(user: np.ndarray) -> tuple[Ratings, Inputs]:
    n = len(user)
    item = (np.arange(n) % 5).astype(np.int16)
    rating = (np.arange(n) % 5 + 1).astype(np.int8)
    data = Ratings(users=pa.table({"customerNumber": np.arange(user.max() + 1)}),
                   items=pa.table({"productCode": [str(i) for i in range(5)]}), user=user, item=item,
                   rating=rating, manifest=None)  # type: ignore[arg-type]  # nothing here reads it
    ids = np.zeros(0, np.int32)
    return data, Inputs.build(None, None, user, item, rating, ids, ids)  # type: ignore[arg-type]  # no features read


def test_a_fold_holds_runs_sets_the_rating_aside_and_gives_both_back() -> None:
    user = np.repeat(np.arange(4), [3, 1, 5, 2]).astype(np.int32)
    data, inputs = _data(user.copy())
    rating = data.rating.copy()
    rows = torch.tensor([10, 0, 4, 3, 8], dtype=torch.int32)
    with folded(data, inputs, rating=False):
        assert isinstance(inputs.user, UserRuns)
        assert torch.equal(inputs.user[rows], torch.from_numpy(user)[rows.long()])
        assert len(data.user) == 0 and len(data.rating) == 0 and len(inputs.rating) == 0
        assert len(data) == len(user)  # counted by the products, still there
    assert np.array_equal(data.user, user) and np.array_equal(data.rating, rating)
    assert torch.equal(inputs.user, torch.from_numpy(user)) and torch.equal(inputs.rating, torch.from_numpy(rating))


def test_a_fold_gives_back_what_it_held_when_the_fit_fails() -> None:
    user = np.repeat(np.arange(3), 2).astype(np.int32)
    data, inputs = _data(user.copy())
    rating = data.rating.copy()
    try:
        with folded(data, inputs, rating=False):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert np.array_equal(data.user, user) and np.array_equal(data.rating, rating)


def test_rows_out_of_order_keep_their_array_and_the_rating_stays_when_read() -> None:
    user = np.array([1, 0, 1, 2], np.int64)
    data, inputs = _data(user.copy())
    before, rating = inputs.user, data.rating.copy()
    with folded(data, inputs):
        assert inputs.user is before and np.array_equal(data.user, user)
        assert np.array_equal(data.rating, rating)


def test_a_rating_that_cannot_be_set_aside_stays_where_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    user = np.repeat(np.arange(3), 2).astype(np.int32)
    data, inputs = _data(user.copy())
    rating = data.rating.copy()

    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    try:
        with folded(data, inputs, rating=False):
            raise AssertionError("the block ran though the rating was not set aside")
    except OSError:
        pass
    assert np.array_equal(data.user, user) and np.array_equal(data.rating, rating)
    assert torch.equal(inputs.user, torch.from_numpy(user))
