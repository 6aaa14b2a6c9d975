"""What the two towers are trained to do: the loss of a batch and the validation criterion.

* ``Retrieval`` (the default): every interaction (a rated, i.e. purchased, pair) is a positive.
  A batch of B interactions scores every user against every item of the batch; each row is a
  softmax over the B items (its own item is the answer, the others are sampled negatives) of
  cosine / temperature, minus log Q(item) — the sampling-bias correction of Yi et al. (RecSys
  2019): an item appears as a negative in proportion to its popularity, so without it popular
  items would be pushed down. Copies of the row's own item elsewhere in the batch are masked.
  A share of each batch drops the id embeddings, so the feature towers alone stay good for
  customers and products seen only through their features. Validation: Recall@10 of the
  validation interactions, ranking every product the customer has not bought in training.
  An event-only interaction (``training.events``) may weigh more or less than a rating.
* ``Rating`` (the seed's): the cosine of a pair regresses the rating scaled to [-1, 1] (MSE);
  validation: the MSE of the validation ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recpipe import ranking
from recpipe.training.dataset import Rows, count
from recpipe.training.fit import Inputs
from recpipe.training.model import TwoTower, rating_to_target, torch

F = torch.nn.functional
CHUNK = 65_536


@dataclass
class Rating:
    data: Inputs
    validation: np.ndarray  # interaction rows
    use_ids: bool = False
    id_l2: float = 1e-3
    id_weight_decay: float = 0.0

    def loss(self, model: TwoTower, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        d = self.data
        u, i = d.user[rows], d.item[rows].int()  # int16 items: torch indexes with int32
        uid = d.uid[u] if self.use_ids else None
        iid = d.iid[i] if self.use_ids else None
        loss = F.mse_loss(model(d.user_x(u), d.item_x(i), uid, iid), rating_to_target(d.rating[rows]))
        if (self.use_ids and self.id_l2 and model.user_id is not None and model.item_id is not None
                and uid is not None and iid is not None):
            loss = loss + self.id_l2 * (model.user_id.penalty(uid) + model.item_id.penalty(iid))
        return loss

    @torch.no_grad()
    def validate(self, model: TwoTower) -> tuple[float, float, float | None]:
        model.eval()
        d, total = self.data, 0.0
        for start in range(0, len(self.validation), CHUNK):
            r = torch.from_numpy(self.validation[start:start + CHUNK])
            u, i = d.user[r], d.item[r].int()
            pred = model(d.user_x(u), d.item_x(i), d.uid[u] if self.use_ids else None, d.iid[i] if self.use_ids else None)
            total += float(F.mse_loss(pred, rating_to_target(d.rating[r]), reduction="sum"))
        mse = total / max(len(self.validation), 1)
        return mse, mse, None


@dataclass
class Retrieval:
    data: Inputs
    train: Rows  # interaction rows (their item frequencies are Q)
    validation: np.ndarray  # interaction rows
    holdout: ranking.Holdout  # validation ranking: seen = training interactions
    temperature: float = 0.05
    logq: bool = True
    id_dropout: float = 0.2
    batch_size: int = 2048
    id_weight_decay: float = 1.0
    weight: np.ndarray | None = None  # per interaction row (None: every positive weighs 1)

    def __post_init__(self) -> None:
        counts = np.bincount(self.data.item.numpy()[self.train], minlength=len(self.data.xi)).astype(np.float64)
        self.weights = torch.from_numpy(self.weight) if self.weight is not None else None
        self.log_q = torch.from_numpy(np.log(np.maximum(counts, 1.0) / max(count(self.train), 1)).astype(np.float32))

    def loss(self, model: TwoTower, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        d = self.data
        u, i = d.user[rows], d.item[rows].int()  # int16 items: torch indexes with int32
        uid, iid = d.uid[u], d.iid[i]
        if self.id_dropout > 0 and model.user_id is not None and model.item_id is not None:
            drop = torch.rand(2, len(rows), generator=generator) < self.id_dropout
            uid = torch.where(drop[0], model.user_id.padding, uid)
            iid = torch.where(drop[1], model.item_id.padding, iid)
        users, items = model.user_embedding(d.user_x(u), uid), model.item_embedding(d.item_x(i), iid)
        if self.weights is None:
            return self._softmax_loss(users, items, i)
        w = self.weights[rows]
        return (self._softmax_loss(users, items, i, reduction="none") * w).sum() / w.sum()

    def _softmax_loss(self, users: torch.Tensor, items: torch.Tensor, item_rows: torch.Tensor,
                      reduction: str = "mean") -> torch.Tensor:
        logits = users @ items.T / self.temperature
        if self.logq:
            logits = logits - self.log_q[item_rows][None, :]
        same = item_rows[None, :] == item_rows[:, None]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(item_rows)), reduction=reduction)

    @torch.no_grad()
    def validate(self, model: TwoTower) -> tuple[float, float, float | None]:
        """Customers' vectors are made for the rows at hand only: every customer's at once was a
        spike of 0.3 GB an epoch at 650,000 customers."""
        model.eval()
        d = self.data
        items = model.item_embedding(d.item_x(), d.iid)
        total = 0.0
        for start in range(0, len(self.validation), self.batch_size):
            r = torch.from_numpy(self.validation[start:start + self.batch_size])
            u, i = d.user[r], d.item[r].int()
            total += float(self._softmax_loss(model.user_embedding(d.user_x(u), d.uid[u]), items[i], i, reduction="sum"))
        item_t = items.numpy().T.copy()

        def scores(rows: np.ndarray) -> np.ndarray:
            u = torch.from_numpy(rows)
            return model.user_embedding(d.user_x(u), d.uid[u]).numpy() @ item_t

        recall = ranking.evaluate(scores, self.holdout)["recall_at_10"]
        return -recall, total / max(len(self.validation), 1), recall
