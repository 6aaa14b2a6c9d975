"""The training loop: seeded mini-batches, Adam, early stopping on the validation loss.

Inputs are prepared once as tensors (encoded features per user and per item, and index
arrays per rating), so a batch is a few gathers. The loop keeps the weights of the best
validation epoch and restores them at the end.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recpipe.training.model import TwoTower, rating_to_target, torch

F = torch.nn.functional


@dataclass(frozen=True)
class FitOptions:
    dim: int = 32
    hidden: tuple[int, ...] = (64,)
    batch_size: int = 1024
    learning_rate: float = 3e-3
    max_epochs: int = 40
    patience: int = 3  # epochs without improvement before stopping
    min_delta: float = 1e-5  # smaller improvements of the validation loss do not count
    id_dim: int = 1  # free values per id embedding (hybrid only)
    id_l2: float = 1e-3  # L2 on the id embeddings of each batch (hybrid only)
    seed: int = 42

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class Inputs:
    """Everything the loop reads, as tensors. ``uid``/``iid`` map a user/item row to its id
    embedding row (the padding row when the id was not seen in training)."""

    xu: torch.Tensor
    xi: torch.Tensor
    user: torch.Tensor
    item: torch.Tensor
    target: torch.Tensor
    uid: torch.Tensor
    iid: torch.Tensor

    @classmethod
    def build(cls, xu: np.ndarray, xi: np.ndarray, user: np.ndarray, item: np.ndarray, rating: np.ndarray,
              uid: np.ndarray, iid: np.ndarray) -> Inputs:
        t = torch.from_numpy
        return cls(t(xu), t(xi), t(user), t(item), t(rating_to_target(rating)), t(uid), t(iid))


@dataclass
class Epoch:
    phase: str
    epoch: int
    train_loss: float  # MSE on the [-1, 1] scale
    val_loss: float
    seconds: float  # since the phase started, at the end of this epoch


@dataclass
class FitResult:
    history: list[Epoch] = field(default_factory=list)
    best: int = -1  # index into history
    samples: int = 0  # training samples processed
    train_seconds: float = 0.0  # inside the batches only

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds else 0.0


def fit(model: TwoTower, data: Inputs, train: np.ndarray, validation: np.ndarray, options: FitOptions, *,
        phase: str = "content", use_ids: bool = False,
        on_batch: Callable[[int], None] | None = None,
        on_epoch: Callable[[Epoch], None] | None = None) -> FitResult:
    """Train ``model`` in place on rows ``train``; stop when ``validation`` stops improving."""
    generator = torch.Generator().manual_seed(options.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    train_t = torch.from_numpy(train)
    result = FitResult()
    best_loss, best_state, stale = float("inf"), None, 0
    started = time.perf_counter()
    for epoch in range(1, options.max_epochs + 1):
        model.train()
        order = train_t[torch.randperm(len(train_t), generator=generator)]
        total, t0 = 0.0, time.perf_counter()
        for start in range(0, len(order), options.batch_size):
            rows = order[start:start + options.batch_size]
            loss = _batch_loss(model, data, rows, use_ids, options.id_l2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            if on_batch is not None:
                on_batch(len(rows))
        result.train_seconds += time.perf_counter() - t0
        result.samples += len(order)
        val = mse(model, data, validation, use_ids)
        result.history.append(Epoch(phase, epoch, total / len(order), val, time.perf_counter() - started))
        if on_epoch is not None:
            on_epoch(result.history[-1])
        if val < best_loss - options.min_delta:
            best_loss, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
            result.best = len(result.history) - 1
        else:
            stale += 1
            if stale >= options.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _batch_loss(model: TwoTower, data: Inputs, rows: torch.Tensor, use_ids: bool, id_l2: float) -> torch.Tensor:
    u, i = data.user[rows], data.item[rows]
    uid = data.uid[u] if use_ids else None
    iid = data.iid[i] if use_ids else None
    loss = F.mse_loss(model(data.xu[u], data.xi[i], uid, iid), data.target[rows])
    if use_ids and id_l2 and model.user_id is not None and model.item_id is not None:
        penalty = model.user_id.penalty(uid) + model.item_id.penalty(iid)
        loss = loss + id_l2 * penalty
    return loss


@torch.no_grad()
def mse(model: TwoTower, data: Inputs, rows: np.ndarray, use_ids: bool, chunk: int = 65_536) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(rows), chunk):
        r = torch.from_numpy(rows[start:start + chunk])
        u, i = data.user[r], data.item[r]
        pred = model(data.xu[u], data.xi[i], data.uid[u] if use_ids else None, data.iid[i] if use_ids else None)
        total += float(F.mse_loss(pred, data.target[r], reduction="sum"))
    return total / max(len(rows), 1)
