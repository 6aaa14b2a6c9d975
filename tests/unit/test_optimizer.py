"""The towers' optimizer: the id tables' weight decay applied lazily equals AdamW's, row by row;
their Adam, its first moment in bfloat16, is SparseAdam's but for that rounding; a step touches
only the rows a batch used."""

from __future__ import annotations

import numpy as np

from recpipe.training.model import TwoTower, torch
from recpipe.training.optimizer import TowerOptimizer


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


def test_the_lazy_adam_is_sparse_adams_but_for_its_first_moment_in_bfloat16() -> None:
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
    # the first moment is rounded to bfloat16 between steps: a few ten-thousandths of what moved
    moved = (theirs.user_id.table.weight - _model().user_id.table.weight).abs()
    assert moved.max() > 0.01
    assert (ours.user_id.table.weight - theirs.user_id.table.weight).abs().max() <= 0.002 * moved.max()
    assert a.momentum[0].dtype == torch.bfloat16 and a.scale[0].dtype == torch.float32
