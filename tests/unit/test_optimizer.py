"""The towers' optimizer: the id tables' weight decay applied lazily equals AdamW's, row by row;
their Adam, its moments in bfloat16, is SparseAdam's but for that rounding; the second moment's
stochastic rounding is unbiased, so it decays as Adam's does; a step touches only the rows a
batch used."""

from __future__ import annotations

import numpy as np

from recpipe.training.model import TwoTower, torch
from recpipe.training.optimizer import TowerOptimizer, _rounded


def _model() -> TwoTower:
    torch.manual_seed(0)
    return TwoTower(4, 3, dim=8, hidden=(8,), user_ids=50, item_ids=20, id_dim=8)


def test_the_lazy_decay_is_adamws_decay_row_by_row() -> None:
    lr, decay, steps = 0.01, 3.0, 7
    lazy, dense = _model(), _model()
    a = TowerOptimizer(lazy, lr, decay)
    b = torch.optim.AdamW([dense.user_id.table.weight], lr=lr, weight_decay=decay)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        ids = torch.from_numpy(rng.choice(50, 5, replace=False))
        for model, opt in ((lazy, a), (dense, b)):
            opt.zero_grad()
            (0.0 * model.user_id.table(ids).sum()).backward()  # no signal: decay only
        a.step()
        dense.user_id.table.weight.grad = dense.user_id.table.weight.grad.to_dense()
        b.step()
    a.settle()
    assert torch.allclose(lazy.user_id.table.weight, dense.user_id.table.weight, rtol=1e-5, atol=1e-8)
    assert torch.count_nonzero(lazy.user_id.table.weight[-1]) == 0  # the padding row stays zero


def test_a_step_moves_only_the_rows_a_batch_used() -> None:
    model = _model()
    opt = TowerOptimizer(model, 0.1, 0.0)
    before = model.user_id.table.weight.detach().clone()
    ids = torch.tensor([3, 7])
    loss = model.user_embedding(torch.randn(2, 4), ids).sum()
    opt.zero_grad()
    loss.backward()
    assert model.user_id.table.weight.grad.is_sparse
    opt.step()
    moved = (model.user_id.table.weight != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 7]


def test_the_lazy_adam_is_sparse_adams_but_for_its_moments_in_bfloat16() -> None:
    lr = 0.01
    ours, theirs = _model(), _model()
    a = TowerOptimizer(ours, lr, 0.0)
    b = torch.optim.SparseAdam([theirs.user_id.table.weight], lr=lr)
    rng = np.random.default_rng(2)
    for _ in range(9):
        ids = torch.from_numpy(rng.choice(50, 6, replace=False))
        pull = torch.from_numpy(rng.normal(size=(6, 8)).astype(np.float32))
        for model, opt in ((ours, a), (theirs, b)):
            opt.zero_grad()
            (model.user_id.table(ids) * pull).sum().backward()
        a.step()
        b.step()
    # the moments are rounded to bfloat16 between steps: a few thousandths of what moved
    moved = (theirs.user_id.table.weight - _model().user_id.table.weight).abs()
    assert moved.max() > 0.01
    assert (ours.user_id.table.weight - theirs.user_id.table.weight).abs().max() <= 0.005 * moved.max()
    assert a.momentum[0].dtype == torch.bfloat16 and a.scale[0].dtype == torch.bfloat16


def test_stochastic_rounding_to_bfloat16_is_unbiased_and_lands_on_a_neighbour() -> None:
    x = torch.full((200_000,), 1.0 + 2**-9, dtype=torch.float32)  # a quarter of the way from 1 to the next bfloat16
    out = _rounded(x, torch.Generator().manual_seed(0))
    up = 1.0 + 2**-7
    assert set(out.float().unique().tolist()) == {1.0, up}
    assert abs(float(out.float().mean()) - (1.0 + 2**-9)) < 2e-5  # round-to-nearest: always 1.0
    exact = torch.tensor([0.0, 1.5, 2.0**-20], dtype=torch.float32)  # bfloat16 values stay as they are
    assert _rounded(exact, torch.Generator()).float().tolist() == exact.tolist()


def test_the_second_moment_decays_as_adams_though_each_step_is_below_bfloat16s_spacing() -> None:
    """b2 = 0.999: a step moves the second moment by 0.1%, bfloat16's spacing near 1 is 0.8%.
    Rounded to the nearest it would stay at 1 for ever; rounded stochastically it falls."""
    model = _model()
    opt = TowerOptimizer(model, 0.01, 0.0)
    opt.scale[0][3] = 1.0
    ids = torch.tensor([3])
    for _ in range(1000):
        opt.zero_grad()
        (0.0 * model.user_id.table(ids).sum()).backward()  # the row is used, its gradient is 0
        opt.step()
    assert abs(float(opt.scale[0][3].float().mean()) - 0.999 ** 1000) < 0.02
