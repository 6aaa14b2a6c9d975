"""The training loop's early stopping: the best validation epoch's weights come back at the
end, though they were kept on disk (``fit.Checkpoint``) and not as a copy in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recpipe.training.fit import Checkpoint, FitOptions, fit
from recpipe.training.model import TwoTower, torch


@dataclass
class Scripted:
    """An objective whose validation criterion follows a script; it records the weights each
    epoch ended with."""

    criteria: list[float]
    id_weight_decay: float = 1.0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def loss(self, model: TwoTower, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = torch.randn(len(rows), 3, generator=generator)
        uid = torch.randint(0, 5, (len(rows),), generator=generator)
        return model.user_embedding(x, uid).pow(2).sum()

    def validate(self, model: TwoTower) -> tuple[float, float, float | None]:
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        value = self.criteria[len(self.seen) - 1]
        return value, value, None


def test_the_best_epoch_comes_back_from_disk() -> None:
    torch.manual_seed(0)
    model = TwoTower(3, 2, user_ids=5, item_ids=1, id_dim=32)
    objective = Scripted([3.0, 1.0, 2.0, 2.5, 4.0, 0.5])  # epoch 2 is best; patience 3 stops after 5
    options = FitOptions(batch_size=4, learning_rate=0.05, patience=3).resolved("retrieval")
    result = fit(model, objective, np.arange(16), options, phase="test")
    assert len(result.history) == 5 and result.best == 1
    best, last = objective.seen[1], objective.seen[-1]
    now = model.state_dict()
    assert any(not torch.equal(best[k], last[k]) for k in best)  # training moved on after the best
    assert all(torch.equal(now[k], best[k]) for k in best)


def test_a_checkpoint_keeps_the_last_save_and_nothing_without_one() -> None:
    model = TwoTower(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Checkpoint().restore(model)  # nothing saved: the model stays as it is
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    keep = Checkpoint()
    keep.save(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    keep.save(model)  # the second save replaces the first
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    keep.restore(model)
    assert all(torch.equal(model.state_dict()[k], before[k] + 1.0) for k in before if before[k].is_floating_point())
    assert keep.file is None
