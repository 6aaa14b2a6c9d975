"""Time order, next-item examples and their evaluation, by hand on tiny cases; the trained
session encoder in torch equals its numpy form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.inference.session import SessionEncoder
from recpipe.training.sequences import Examples, Sequences, next_item, pairs_of


def test_sequences_follow_each_customers_order_and_skip_the_unknown() -> None:
    user = np.array([0, 0, 0, 1, 1, 0])
    order = np.array([5, 1, 3, 0, 2, -1])  # row 5: never ordered
    s = Sequences.of(user, order)
    assert s.rows is not None and s.rows.tolist() == [1, 2, 0, 3, 4]
    assert s.place(np.arange(6), user).tolist() == [2, 0, 1, 0, 1, -1]
    assert s.start.tolist() == [0, 3] and s.length.tolist() == [3, 2]
    assert s.last().tolist() == [0, 4]  # each customer's latest with something before it
    assert s.last(np.array([1])).tolist() == [4]
    assert s.last(back=2).tolist() == [2]  # customer 0's one before the latest; customer 1's has nothing before it
    assert s.last(back=3).tolist() == []
    item = np.array([10, 11, 12, 13, 14, 15])
    assert s.histories(np.array([0, 4, 1, 5]), user, item, length=3).tolist() == [
        [-1, 11, 12], [-1, -1, 13], [-1, -1, -1], [-1, -1, -1]]


def test_the_split_keeps_each_latest_for_the_test_and_the_one_before_for_the_validation() -> None:
    import pyarrow as pa

    from recpipe.training.dataset import Ratings, interaction_split

    n = 60
    user = np.repeat(np.arange(6), 10)
    order = np.tile(np.arange(10), 6)
    data = Ratings(user=user, item=np.arange(n) % 17, rating=np.ones(n, np.float32),
                   users=pa.table({"customerNumber": np.arange(6)}), items=pa.table({"productCode": [str(i) for i in
                                                                                                  range(17)]}),
                   manifest=None, order=order)  # type: ignore[arg-type]  # the split reads no manifest
    s = Sequences.of(user, order)
    latest, before = s.last(), s.last(back=2)
    split = interaction_split(data, seed=1, cold=0.0, latest=latest, before_latest=before)
    assert set(latest) <= set(split.test) and set(before) <= set(split.validation)
    assert not set(before) & (set(split.train) | set(split.test))
    assert sorted([*split.train, *split.validation, *split.test]) == list(range(n))


def test_next_item_by_hand() -> None:
    """Three examples over 5 products; scores fixed, so the ranks are known."""
    ex = Examples(user=np.array([0, 1, 2]), item=np.array([3, 0, 4]),
                  history=np.array([[-1, 1], [-1, 2], [0, 1]]))
    scores = np.array([[0.9, 0.8, 0.1, 0.5, 0.0],   # 0 first, 1 is history: 3 second -> rank 2
                       [0.1, 0.2, 0.9, 0.3, 0.4],   # 2 is history; 4, 3, 1, 0: rank 4
                       [0.9, 0.9, 0.1, 0.2, 0.0]])  # 0, 1 history; 3, 2, 4: rank 3
    got = next_item(lambda idx: scores[idx], ex, 5)
    assert got["hit_at_10"] == 1.0 and got["mrr_at_10"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 3) / 3)
    # what the customer had already is left out too (but never the target itself)
    seen = next_item(lambda idx: scores[idx], ex, 5, np.array([0, 0]), np.array([0, 3]))
    assert seen["mrr_at_10"] == pytest.approx((1 / 1 + 1 / 4 + 1 / 3) / 3)


@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5)), max_size=60),
       customers=st.lists(st.integers(0, 11), max_size=8), block=st.integers(1, 7))
def test_the_pairs_of_some_customers_are_those_a_whole_mask_finds(
        pairs: list[tuple[int, int]], customers: list[int], block: int) -> None:
    from recpipe.training import sequences

    user = np.array([u for u, _ in pairs], dtype=np.int64)
    item = np.array([i for _, i in pairs], dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sequences, "BLOCK", block)  # many blocks, and customers across their edges
        got_user, got_item = pairs_of(user, item, np.array(customers, dtype=np.int64))
    mask = np.isin(user, customers)
    assert got_user.tolist() == user[mask].tolist() and got_item.tolist() == item[mask].tolist()


def test_next_item_ranks_the_same_whatever_its_block() -> None:
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(300, 40))
    ex = Examples(rng.integers(0, 30, 300), rng.integers(0, 40, 300), rng.integers(-1, 40, (300, 5)))
    seen = (rng.integers(0, 30, 500), rng.integers(0, 40, 500))
    want = next_item(lambda idx: scores[idx], ex, 40, *seen, block=300)
    for block in (1, 7, 64, None):
        got = next_item(lambda idx: scores[idx], ex, 40, *seen, block=block)
        assert got["hit_at_10"] == want["hit_at_10"] and got["mrr_at_10"] == pytest.approx(want["mrr_at_10"])


def test_the_held_out_loss_in_batches_is_the_loss_of_all_at_once() -> None:
    from recpipe.training.session import SessionPooling, _held_out_loss, _loss, _Owned

    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    items = torch.nn.functional.normalize(torch.randn(30, 8), dim=1)
    users = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    ex = Examples(rng.integers(0, 12, 101), rng.integers(0, 30, 101), rng.integers(-1, 30, (101, 4)))
    owned = _Owned((rng.integers(0, 12, 200), rng.integers(0, 30, 200)), 12)
    model = SessionPooling(8, decay=0.6)
    with torch.no_grad():
        whole = float(_loss(model, users, items, ex, torch.ones(101, dtype=torch.bool), 0.2, None, owned))
        for batch in (1, 16, 101, 500):
            assert _held_out_loss(model, users, items, ex, 0.2, owned, batch) == pytest.approx(whole, rel=1e-5)


def test_the_numpy_encoder_equals_torch() -> None:
    from recpipe.training.session import SessionPooling

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 32)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    own = rng.normal(size=(7, 32)).astype(np.float32)
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    history = rng.integers(0, 50, (7, 20))
    history[0, :15] = -1  # a short history
    history[1, :] = -1
    history[1, -1] = 3  # a single product
    model = SessionPooling(32, decay=0.7, base=0.6)
    with torch.no_grad():
        model.delta.copy_(torch.randn(32, 32) * 0.1)
        mask = torch.from_numpy(history >= 0)
        got = model(torch.from_numpy(own), torch.tensor([True] * 6 + [False]),
                    torch.from_numpy(items)[torch.from_numpy(history).clamp(min=0)], mask).numpy()
    enc = model.to_numpy()
    want = np.concatenate([enc.user_vectors(own[:6], history[:6], items), enc.user_vectors(None, history[6:], items)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the serving form (one shopper, product codes) agrees with the batch form
    from recpipe.contracts.events import Activity

    vectors = {f"P{i}": items[i] for i in range(50)}
    one = enc.user_vector(own[0], [Activity(f"P{i}") for i in history[0] if i >= 0], vectors)
    np.testing.assert_allclose(one, want[0], atol=1e-5)
    again = SessionEncoder.from_arrays(enc.to_arrays())  # as towers.npz keeps it
    assert again is not None
    np.testing.assert_array_equal(again.user_vectors(own[:6], history[:6], items), want[:6])


def test_training_the_encoder_is_deterministic_and_learns_a_planted_transition() -> None:
    """Each product is followed by the next one (i -> i+1): the trained encoder finds it; the
    untrained average cannot (it points back at the history, which is left out)."""
    from recpipe.training.session import fit_session

    rng = np.random.default_rng(1)
    n = 40
    items = rng.normal(size=(n, 32)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    users = np.zeros((1, 32), np.float32)
    users[0, 0] = 1.0
    start = rng.integers(0, n, 3000)
    history = np.stack([(start + k) % n for k in range(3)], axis=1)
    ex = Examples(np.zeros(3000, np.int64), (start + 3) % n, history)
    first = fit_session(users, items, ex, temperature=0.1, seed=3, max_epochs=15)
    again = fit_session(users, items, ex, temperature=0.1, seed=3, max_epochs=15)
    assert first.report["trained"] and first.encoder.transform is not None and again.encoder.transform is not None
    np.testing.assert_array_equal(first.encoder.transform, again.encoder.transform)
    held = first.report["held_out_hit_at_10"]
    assert held["trained"] > 0.9 > held["untrained"]


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 6), st.integers(-1, 8), st.integers(0, 9)), max_size=40),
       back=st.integers(1, 3), in_order=st.booleans())
def test_sequences_agree_with_a_customer_by_customer_reading(data: list[tuple[int, int, int]], back: int,
                                                              in_order: bool) -> None:
    """Each customer's known interactions in time order (ties by row): the latest ones and the
    histories come out as reading them one customer at a time gives, whether the rows lie in
    that order already (nothing kept per row) or not."""
    user = np.array([d[0] for d in data], dtype=np.int32)
    order = np.array([d[1] for d in data], dtype=np.int64)
    item = np.array([d[2] for d in data], dtype=np.int32)
    if in_order:  # as reading lays the rows out: by customer, then time, the never ordered first
        by = np.lexsort((order, user))
        user, order, item = user[by], order[by], item[by]
    s = Sequences.of(user, order)
    assert s.rows is None or not in_order  # rows in order: nothing kept per row
    timeline = {u: sorted((r for r in range(len(data)) if user[r] == u and order[r] >= 0), key=lambda r: (order[r], r))
                for u in sorted(set(user.tolist()))}
    assert s.last(back=back).tolist() == [rows[-back] for rows in timeline.values() if len(rows) > back]
    targets = np.arange(len(data))
    expected = []
    for r in targets:
        rows = timeline[int(user[r])]
        before = rows[:rows.index(r)] if r in rows else []
        expected.append([-1] * (3 - len(before[-3:])) + [int(item[b]) for b in before[-3:]])
    assert s.histories(targets, user, item, length=3).tolist() == expected
