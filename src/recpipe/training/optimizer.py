"""The optimizer of the two towers: AdamW, with the id-embedding tables updated lazily.

A batch uses a few thousand of the id tables' rows; dense AdamW reads and writes every row at
every step (its moments, its decay), so a step of a 617,000-customer shop cost 195 ms against
50 ms at 65,000 (bench/scale.py), and an epoch grew with customers × ratings. Here the tables
take sparse gradients (``IdEmbedding``) and:

* a lazy Adam moves only the rows a batch used (a row's moments are not decayed while it is not
  used), as ``torch.optim.SparseAdam`` does, with both moments held in bfloat16: 4 bytes a
  value instead of 8 (83 MB less at 650,000 customers). The step is made from the float32
  moments before they are rounded. The first moment is rounded to the nearest; the second
  stochastically (``_rounded``): its decay, 0.1% a step, is below bfloat16's spacing (0.4–0.8%),
  and rounded to the nearest it would never fall. The step is SparseAdam's within a few
  thousandths (``tests/unit/test_optimizer.py``). A second moment per row instead of per value (FBGEMM's
  partial row-wise Adam) would take 42 MB more off, but at 10M ratings it trained 9 epochs
  and refit 6 where per value it trained 6 and refit 3 (``docs/scale.md``);
* AdamW's decoupled weight decay, a factor ``1 - lr · decay`` per step on every row, is applied
  to a row when a batch uses it, for every step since it was last applied (``_decay``), and to
  every row before the model is read (``settle``): the decay each row gets is AdamW's, exactly.

Everything else (the MLPs, the id projections) is fused AdamW without decay, as before.
"""

from __future__ import annotations

from typing import Any

from recpipe.training.model import torch

ID_TABLES = "_id.table.weight"
BETAS = (0.9, 0.999)  # Adam's (and SparseAdam's) defaults
EPS = 1e-8


class TowerOptimizer:
    def __init__(self, model: Any, learning_rate: float, id_weight_decay: float) -> None:
        named = list(model.named_parameters())
        self.tables = [p for n, p in named if n.endswith(ID_TABLES)]
        rest = [p for n, p in named if not n.endswith(ID_TABLES)]
        self.dense = torch.optim.AdamW(rest, lr=learning_rate, weight_decay=0.0, fused=True)
        self.learning_rate = learning_rate
        self.keep = 1.0 - learning_rate * id_weight_decay  # a row's decay factor per step
        self.step_count = 0
        # the step each row was decayed to (int32: a fit of 2**31 steps would take centuries)
        self.last = [torch.zeros(len(t), dtype=torch.int32) for t in self.tables]
        # per value, in bfloat16: rounding it (0.4% at most) is far below a batch's noise, and the
        # update is made from the float32 value before it is rounded (42 MB less at 650,000 customers)
        self.momentum = [torch.zeros_like(t, dtype=torch.bfloat16) for t in self.tables]
        # per value, its squared gradient, in bfloat16 rounded stochastically (42 MB less)
        self.scale = [torch.zeros_like(t, dtype=torch.bfloat16) for t in self.tables]
        self.noise = torch.Generator().manual_seed(torch.initial_seed() % 2**63)  # the rounding's: seeded with the run

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)
        for table in self.tables:
            table.grad = None

    def step(self) -> None:
        self.step_count += 1
        self.dense.step()
        with torch.no_grad():
            for table, last, m, v in zip(self.tables, self.last, self.momentum, self.scale, strict=True):
                if table.grad is None:
                    continue
                grad = table.grad.coalesce()
                rows, g = grad.indices()[0], grad.values()
                self._decay(table, last, rows)
                self._adam(table, m, v, rows, g)

    def _adam(self, table: Any, m: Any, v: Any, rows: Any, g: Any) -> None:
        """SparseAdam's step on ``rows`` (their gradients ``g``)."""
        (b1, b2), t = BETAS, self.step_count
        m_rows = m[rows].to(g.dtype).mul_(b1).add_(g, alpha=1 - b1)
        v_rows = v[rows].to(g.dtype).mul_(b2).addcmul_(g, g, value=1 - b2)
        m[rows], v[rows] = m_rows.to(m.dtype), _rounded(v_rows, self.noise)
        size = self.learning_rate * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
        table.index_add_(0, rows, m_rows / v_rows.sqrt_().add_(EPS), alpha=-size)

    def settle(self) -> None:
        """Every row's decay up to now: before the tables are read (validation, export)."""
        with torch.no_grad():
            for table, last in zip(self.tables, self.last, strict=True):
                self._decay(table, last)

    def _decay(self, table: Any, last: Any, rows: Any = None) -> None:
        """AdamW decays before each step's update: a row used now takes the decay of the steps
        since it was last brought up to date, this one included. ``rows`` None: every row, in
        place (not a gathered copy of the table: 83 MB at 650,000 customers)."""
        if self.keep == 1.0:
            return
        keep = torch.tensor(self.keep, dtype=table.dtype)
        if rows is None:
            table.mul_(torch.pow(keep, (self.step_count - last).to(table.dtype))[:, None])
            last.fill_(self.step_count)
            return
        behind = (self.step_count - last[rows]).to(table.dtype)
        table[rows] *= torch.pow(keep, behind)[:, None]
        last[rows] = self.step_count


def _rounded(x: Any, generator: Any) -> Any:
    """float32 ``x`` (contiguous, finite) to bfloat16, rounded up or down at random in
    proportion to how near each is (stochastic rounding): unbiased, so a moment that moves by
    less than bfloat16's spacing each step still moves on average. bfloat16 is float32's upper
    16 bits: add a uniform 16-bit number to the lower ones, then cut them."""
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, generator=generator)
    return ((x.view(torch.int32) + noise) & -65536).view(torch.float32).to(torch.bfloat16)
