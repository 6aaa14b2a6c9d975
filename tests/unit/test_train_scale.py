"""Training at scale: the dataset read a few files at a time, the evaluation on a seeded
sample of customers with its interval, the rating baseline off by default above a size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe import ranking
from recpipe.adapters import open_artifacts, open_lake, scan
from recpipe.source.generate import ShopSpec
from recpipe.training import evaluate, reading, retrieval
from recpipe.training.dataset import interaction_split
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from tests.support.training import etl_lake

FAST = FitOptions(max_epochs=2, patience=1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etl_lake(tmp_path_factory.mktemp("shop"), ShopSpec(customers=400, products=60, seed=11))


def test_reading_a_few_files_at_a_time_gives_the_same_ratings(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = reading.read_ratings(open_lake(str(lake)))
    monkeypatch.setattr(scan, "FILES_AT_ONCE", 7)  # 400 customers' files: 58 groups
    monkeypatch.setattr(scan, "BATCH_ROWS", 5)
    monkeypatch.setattr(scan, "ROWS_AT_ONCE", 9)  # and a customer's rows split between tables
    grouped = reading.read_ratings(open_lake(str(lake)))
    assert grouped.users.equals(whole.users) and grouped.items.equals(whole.items)
    for name in ("user", "item", "rating", "order"):
        a, b = getattr(whole, name), getattr(grouped, name)
        assert a is not None and b is not None and a.dtype == b.dtype and np.array_equal(a, b), name
    assert whole.users["customerNumber"].to_pylist() == sorted(whole.users["customerNumber"].to_pylist())
    assert whole.items["productCode"].to_pylist() == sorted(whole.items["productCode"].to_pylist())
    assert np.all(np.diff(whole.user) >= 0) and whole.order is not None  # by customer, then time
    for u in range(len(whole.users)):  # the never ordered first, then the ordered ones' places in time
        order = whole.order[whole.user == u]
        timed = order[order >= 0]
        assert np.array_equal(order, np.r_[np.full(len(order) - len(timed), -1), np.arange(len(timed))]), u


def test_the_evaluation_ranks_a_seeded_sample_of_customers(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = reading.read_ratings(open_lake(str(lake)))
    s = interaction_split(data, seed=3)
    n_users, n_items = len(data.users), len(data.items)
    whole = evaluate.Holdouts.of(data.user, data.item, n_users, n_items, s, seed=3)
    assert not whole.sample["sampled"] and whole.sample["test_customers_of"] == len(whole.test.users)
    monkeypatch.setattr(evaluate, "EVALUATION_CUSTOMERS", 50)
    a = evaluate.Holdouts.of(data.user, data.item, n_users, n_items, s, seed=3)
    b = evaluate.Holdouts.of(data.user, data.item, n_users, n_items, s, seed=3)
    assert a.sample["sampled"] and a.sample["test_customers_of"] == whole.sample["test_customers_of"]
    assert len(a.test.users) == 50 and np.array_equal(a.test.users, b.test.users)  # seeded
    assert len(a.cold.users) == min(50, len(whole.cold.users))
    # a sampled customer keeps every one of their held-out products, and what they had already
    kept = np.isin(whole.test.relevant_user, a.test.users)
    assert np.array_equal(np.sort(whole.test.relevant_item[kept]), np.sort(a.test.relevant_item))
    mine = np.isin(whole.test.seen_user, a.test.users)  # what they had already: theirs only
    assert np.array_equal(a.test.seen_user, whole.test.seen_user[mine]) and a.history_user is a.test.seen_user
    assert np.array_equal(a.validation.relevant_user, whole.validation.relevant_user)  # validation as before


def test_a_figure_comes_with_the_95_percent_interval_of_its_mean() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 30
    relevant_user = np.repeat(np.arange(n_users), 2)
    relevant_item = rng.integers(0, n_items, len(relevant_user))
    h = ranking.Holdout(n_users, n_items, np.zeros(0, np.int64), np.zeros(0, np.int64), relevant_user, relevant_item)
    got = ranking.evaluate(lambda rows: rng.random((len(rows), n_items)), h)
    low, high = got["ci95"]["recall_at_10"]
    assert low < got["recall_at_10"] < high
    # the same interval by hand: a customer's recall is their hits of 1 or 2 held-out products
    assert 0.02 < high - low < 0.1
    assert ranking.interval(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(
        [0.5 - 1.96 * np.std([0, 1, 0, 1], ddof=1) / 2, 0.5 + 1.96 * np.std([0, 1, 0, 1], ddof=1) / 2])


@pytest.mark.parametrize(("asked", "limit", "trained"), [(None, 10**9, True), (None, 100, False), (True, 100, True),
                                                         (False, 10**9, False)])
def test_the_rating_baseline_is_off_by_default_above_a_size(tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch,
                                                            asked: bool | None, limit: int, trained: bool) -> None:
    monkeypatch.setattr(retrieval, "RATING_BASELINE_MAX", limit)
    store, name = open_artifacts(str(tmp_path / "art"))
    m = train(open_lake(str(lake)), store, name, TrainOptions(fit=FAST, rating_baseline=asked, events=False))
    got = m.metrics["baselines"]["rating_model"]
    assert ("recall_at_10" in got) is trained, got
    if not trained:
        assert "--rating-baseline" in got["skipped"]


def test_a_tower_runs_many_rows_a_block_at_a_time_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from recpipe.inference import towers

    rng = np.random.default_rng(0)
    tower = towers.Tower([(rng.normal(size=(8, 5)).astype(np.float32), rng.normal(size=8).astype(np.float32)),
                          (rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=4).astype(np.float32))],
                         ids=np.array([10, 11, 12]), id_embedding=rng.normal(size=(3, 4)).astype(np.float32))
    x, ids = rng.normal(size=(50, 5)), list(range(5, 55))
    whole = tower(x, ids)
    monkeypatch.setattr(towers, "ROWS_AT_ONCE", 7)
    assert np.allclose(tower(x, ids), whole, atol=1e-6) and tower(x, np.array(ids)).shape == (50, 4)


def test_rows_go_by_customer_then_day_then_line_and_the_never_ordered_first(monkeypatch: pytest.MonkeyPatch) -> None:
    user = np.array([1, 0, 0, 1, 0, 0], np.int32)
    item = np.array([0, 1, 2, 3, 4, 5], np.int32)
    day = np.array([5, reading.NO_DAY, 5, 3, 5, 5], np.int32)
    line = np.array([2, 7, reading.LAST_LINE, 9, 1, 1], np.int64)  # a null line is last in its day
    order = reading._sequence_order(user, item, day, line)
    assert order.tolist() == [1, 4, 5, 2, 3, 0]  # customer 0: never ordered, day 5 line 1 (two: by product), null line
    assert order.dtype == np.int32
    assert reading._sequence_order(user, item, None, None).tolist() == [1, 2, 4, 5, 0, 3]
    monkeypatch.setattr(reading, "BLOCK_ROWS", 2)  # sorted and placed in blocks
    assert reading._sequence_order(user, item, day, line).tolist() == [1, 4, 5, 2, 3, 0]
    timed = day[order] != reading.NO_DAY
    assert reading._places(user[order], timed).tolist() == [-1, 0, 1, 2, 0, 1]
    assert reading._places(np.array([0, 1, 1], np.int32), np.zeros(3, bool)) is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 9), st.integers(0, 2**31))
def test_the_order_sorted_a_block_of_customers_at_a_time_is_one_whole_lexsort(n: int, block: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 7, n).astype(np.int32)  # a customer may have no rows
    item = rng.integers(0, 4, n).astype(np.int16)
    day = rng.choice([reading.NO_DAY, 3, 4], n).astype(np.int32)
    line = rng.integers(0, 3, n).astype(np.int32)
    whole = np.lexsort((item, line, day, user))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(reading, "BLOCK_ROWS", block)
        assert reading._sequence_order(user, item, day, line).tolist() == whole.tolist()
        assert reading._sequence_order(user, item, None, None).tolist() == np.lexsort((item, user)).tolist()
        assert reading._taken(item, whole).tolist() == item[whole].tolist()


def test_order_lines_are_held_in_int32_where_they_fit_and_sort_the_same() -> None:
    user = np.array([1, 0, 0, 1, 0, 0], np.int32)
    item = np.array([0, 1, 2, 3, 4, 5], np.int32)
    day = np.array([5, reading.NO_DAY, 5, 3, 5, 5], np.int32)
    parts = [reading._narrow(np.array([2, 7, reading.LAST_LINE], np.int64)),
             reading._narrow(np.array([9, 1, 1], np.int64))]
    assert parts[0].dtype == np.int32 and parts[0][2] == np.iinfo(np.int32).max  # unknown: still last
    narrow = reading._lines(parts)
    assert narrow.dtype == np.int32 and parts == []
    assert reading._sequence_order(user, item, day, narrow).tolist() == [1, 4, 5, 2, 3, 0]
    big = [reading._narrow(np.array([2, 7, reading.LAST_LINE], np.int64)),
           reading._narrow(np.array([9, 2**40, 1], np.int64))]  # a line id past int32: that part kept as it is
    assert [p.dtype for p in big] == [np.int32, np.int64]
    wide = reading._lines(big)  # the int32 part's unknown widened back
    assert wide.dtype == np.int64 and wide.tolist() == [2, 7, reading.LAST_LINE, 9, 2**40, 1] and big == []
    assert reading._narrow(np.array([-2**40], np.int64)).dtype == np.int64


def test_file_names_are_held_compactly_and_slice_to_lists() -> None:
    names = scan.FileNames([f"ratings/customerNumber={k}/part-0.parquet" for k in range(5)])
    assert len(names) == 5 and names[1] == "ratings/customerNumber=1/part-0.parquet"
    assert names[3:10] == ["ratings/customerNumber=3/part-0.parquet", "ratings/customerNumber=4/part-0.parquet"]
    assert next(iter(names)) == names[0] and not scan.FileNames([])


def test_fit_shuffles_the_rows_in_place_and_gives_them_back_sorted(lake: Path) -> None:
    """No permutation beside the rows: each epoch shuffles them where they lie; the caller gets
    them back in their order (EASE reads them in customer order)."""
    from recpipe.training.fit import fit
    from recpipe.training.inputs import prepare
    from recpipe.training.model import torch
    from recpipe.training.objectives import Retrieval

    data = reading.read_ratings(open_lake(str(lake)))
    s = interaction_split(data, seed=3)
    h = evaluate.Holdouts.of(data.user, data.item, len(data.users), len(data.items), s, seed=3)
    p = prepare(data, s.train)
    train, kept = s.train, s.train.copy()
    seen: list[np.ndarray] = []

    class Watching(Retrieval):
        def loss(self, model: object, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            seen.append(rows.numpy().copy())
            return super().loss(model, rows, generator)  # type: ignore[arg-type]

    hp = FAST.resolved("retrieval")
    torch.manual_seed(0)
    model = p.new_model(hp, ids=True, id_dim=hp.dim)
    fit(model, Watching(p.inputs, train, s.validation, h.validation, batch_size=256), train, replace(hp, batch_size=256),
        phase="test", validate=False, epochs=2)
    assert train is s.train and np.array_equal(train, kept)
    epochs = np.concatenate(seen).reshape(2, -1)
    assert all(np.array_equal(np.sort(e), kept) for e in epochs)  # each epoch: every row once
    assert not np.array_equal(epochs[0], kept) and not np.array_equal(epochs[0], epochs[1])  # shuffled, anew
