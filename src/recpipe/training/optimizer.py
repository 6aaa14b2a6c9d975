"""The optimizer of the two towers: AdamW, with the id-embedding tables updated lazily.

A batch uses a few thousand of the id tables' rows; dense AdamW reads and writes every row at
every step (its moments, its decay), so a step of a 617,000-customer shop cost 195 ms against
50 ms at 65,000 (bench/scale.py), and an epoch grew with customers × ratings. Here the tables
take sparse gradients (``IdEmbedding``) and:

* ``torch.optim.SparseAdam`` moves only the rows a batch used ("lazy Adam": a row's moments
  are not decayed while it is not used);
* AdamW's decoupled weight decay, a factor ``1 - lr · decay`` per step on every row, is applied
  to a row when a batch uses it, for every step since it was last applied (``catch_up``), and to
  every row before the model is read (``settle``): the decay each row gets is AdamW's, exactly.

Everything else (the MLPs, the id projections) is fused AdamW without decay, as before.
"""

from __future__ import annotations

from typing import Any

from recpipe.training.model import torch

ID_TABLES = "_id.table.weight"


class TowerOptimizer:
    def __init__(self, model: Any, learning_rate: float, id_weight_decay: float) -> None:
        named = list(model.named_parameters())
        self.tables = [p for n, p in named if n.endswith(ID_TABLES)]
        rest = [p for n, p in named if not n.endswith(ID_TABLES)]
        self.dense = torch.optim.AdamW(rest, lr=learning_rate, weight_decay=0.0, fused=True)
        self.sparse = torch.optim.SparseAdam(self.tables, lr=learning_rate) if self.tables else None
        self.keep = 1.0 - learning_rate * id_weight_decay  # a row's decay factor per step
        self.step_count = 0
        self.last = [torch.zeros(len(t), dtype=torch.int64) for t in self.tables]  # step each row was decayed to

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)
        if self.sparse is not None:
            self.sparse.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.step_count += 1
        self.dense.step()
        if self.sparse is None:
            return
        with torch.no_grad():
            for table, last in zip(self.tables, self.last, strict=True):
                if table.grad is None:
                    continue
                table.grad = table.grad.coalesce()
                rows = table.grad.indices()[0]
                self._decay(table, last, rows)
        self.sparse.step()

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
