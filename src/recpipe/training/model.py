"""The two-tower network in PyTorch (its artifacts: ``recpipe.contracts.artifacts``), and its export to the numpy form.

Each tower is an MLP from the encoded features to a 32-dimensional embedding; with id
embeddings it also learns a vector per user and per item id seen in training, added to the
tower's output (ids it has not seen add nothing, so features are the fallback). Both
embeddings are L2-normalised and a pair scores their cosine similarity; what that score is
trained to mean is the objective's business (``objectives.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from recpipe.errors import require
from recpipe.inference.towers import Tower, Towers

if TYPE_CHECKING:
    import torch
    from torch import nn
else:
    torch = require("torch", "train", "Training the two-tower model")
    nn = torch.nn
F = torch.nn.functional


def rating_to_target(rating: torch.Tensor) -> torch.Tensor:
    """1..5 → -1..1."""
    return (rating - 3.0) / 2.0


def mlp(width: int, hidden: Sequence[int], dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, dim))
    return nn.Sequential(*layers)


class TwoTower(nn.Module):
    def __init__(self, user_width: int, item_width: int, *, dim: int = 32,
                 hidden: Sequence[int] = (64,), user_ids: int = 0, item_ids: int = 0,
                 id_dim: int = 1) -> None:
        """``user_ids``/``item_ids``: how many ids get their own embedding (0 = content only).
        Index ``user_ids`` (one past the last) means "no id" and adds zeros. An id embedding
        has ``id_dim`` free values, mapped into the ``dim`` space by a shared projection: with
        a few ratings per customer, a free 32-value vector each would learn the noise."""
        super().__init__()
        self.dim = dim
        self.user_tower = mlp(user_width, hidden, dim)
        self.item_tower = mlp(item_width, hidden, dim)
        self.user_id = IdEmbedding(user_ids, id_dim, dim) if user_ids > 0 else None
        self.item_id = IdEmbedding(item_ids, id_dim, dim) if item_ids > 0 else None

    def user_embedding(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._embed(self.user_tower, self.user_id, x, ids)

    def item_embedding(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._embed(self.item_tower, self.item_id, x, ids)

    @staticmethod
    def _embed(tower: nn.Module, table: IdEmbedding | None, x: torch.Tensor,
               ids: torch.Tensor | None) -> torch.Tensor:
        h = tower(x)
        if table is not None and ids is not None:
            h = h + table(ids)
        return F.normalize(h, dim=1)

    def forward(self, xu: torch.Tensor, xi: torch.Tensor, uid: torch.Tensor | None = None,
                iid: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine similarity per pair, in [-1, 1]."""
        return (self.user_embedding(xu, uid) * self.item_embedding(xi, iid)).sum(dim=1)

    def to_numpy(self, user_ids: np.ndarray | None = None, item_ids: np.ndarray | None = None) -> Towers:
        """The numpy form (``inference.towers``); ``*_ids`` name the id-embedding rows."""
        def tower(seq: nn.Sequential, table: IdEmbedding | None, ids: np.ndarray | None) -> Tower:
            layers = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
                      for m in seq if isinstance(m, nn.Linear)]
            if table is None or ids is None:
                return Tower(layers)
            # ``full()`` is a new tensor (not the table): its rows without the padding one, no copy
            return Tower(layers, np.asarray(ids), table.full().detach().numpy()[:-1])

        return Towers(tower(self.user_tower, self.user_id, user_ids),
                      tower(self.item_tower, self.item_id, item_ids))


class IdEmbedding(nn.Module):
    """``n`` ids (+ a padding row of zeros) with ``rank`` free values each, projected to ``dim``."""

    def __init__(self, n: int, rank: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(n + 1, rank, padding_idx=n, sparse=True)  # training.optimizer: lazy updates
        nn.init.normal_(self.table.weight, std=0.01)
        with torch.no_grad():
            self.table.weight[n].zero_()
        self.project = nn.Linear(rank, dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.table(ids))

    @property
    def padding(self) -> int:
        """The row meaning "no id" (adds zeros)."""
        return self.table.num_embeddings - 1

    def penalty(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the free values of ``ids`` (for L2 on the rows a batch uses)."""
        return self.table(ids).pow(2).sum(1).mean()

    def full(self) -> torch.Tensor:
        """Every id's embedding in the ``dim`` space, padding row last."""
        return self.project(self.table.weight)
