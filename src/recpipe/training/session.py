"""The session encoder, trained on next-item examples with the two towers frozen.

``SessionPooling`` is the torch form of ``inference.session.SessionEncoder``: the recency
decay, the weight of the customer's own vector and a ``dim × dim`` transform of the pooled
history (initialised at the identity: training starts from the untrained average) are learned.
An example is a product a customer took next and the ``MAX_RECENT`` before it; its loss is the
softmax over every product (the history left out) of cosine / temperature, as the retrieval
objective uses. A share of each batch is trained as a visitor (no own vector), so one encoder
serves both, and each history is cut to its latest 1 to ``MAX_RECENT`` products at random, so it
serves a session's first clicks as well as a long history. Early stopping and the choice are on
held-out examples (each customer's interaction before their latest, else a fifth of the
examples): of the trained encoder, the untrained one and a small grid of recency decays and
own-vector weights (with and without the trained transform), the one that ranks them best is
kept, so training it never makes serving worse.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recpipe.inference.session import SessionEncoder, unit
from recpipe.progress import SILENT, Progress
from recpipe.training.model import torch
from recpipe.training.sequences import Examples, next_item

F = torch.nn.functional
nn = torch.nn
FULL_SOFTMAX_ITEMS = 20_000  # above this, each batch scores a uniform sample of products
SAMPLED = 8_192
OWN_ONLY = 1e6  # a base this large leaves a known customer's own vector as it is
DECAYS = (0.3, 0.5, 0.65, 0.8)  # the recency decays and own-vector weights tried on the held-out examples
BASES = (0.5, 0.75, 1.0, 1.5)


class SessionPooling(nn.Module):
    def __init__(self, dim: int, *, decay: float = 0.8, base: float = 1.0, cart: float = 1.5) -> None:
        super().__init__()
        self.decay_logit = nn.Parameter(torch.tensor(math.log(decay / (1 - decay))))
        self.base_raw = nn.Parameter(torch.tensor(math.log(math.expm1(base))))  # softplus⁻¹
        self.delta = nn.Parameter(torch.zeros(dim, dim))
        self.cart = cart

    @property
    def decay(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logit)

    @property
    def base(self) -> torch.Tensor:
        return F.softplus(self.base_raw)

    def forward(self, own: torch.Tensor, has_own: torch.Tensor, history: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """``own`` (B, d) unit vectors, used where ``has_own``; ``history`` (B, L, d) item
        vectors, oldest first, valid where ``mask``."""
        age = (torch.flip(torch.cumsum(torch.flip(mask.long(), [1]), 1), [1]) - 1).clamp(min=0)
        weights = torch.where(mask, self.decay ** age.float(), torch.zeros((), dtype=own.dtype))
        pooled = (weights.unsqueeze(-1) * history).sum(1)
        pooled = pooled @ (torch.eye(self.delta.shape[0]) + self.delta).T
        pooled = F.normalize(pooled, dim=1)
        return F.normalize(self.base * own * has_own.unsqueeze(1).to(own.dtype) + pooled, dim=1)

    def to_numpy(self) -> SessionEncoder:
        return SessionEncoder(decay=float(self.decay.detach()), cart=self.cart, base=float(self.base.detach()),
                              transform=(torch.eye(self.delta.shape[0]) + self.delta).detach().numpy().copy())


@dataclass
class SessionFit:
    encoder: SessionEncoder
    report: dict[str, Any] = field(default_factory=dict)


def fit_session(users: np.ndarray, items: np.ndarray, ex: Examples, *, temperature: float, seed: int,
                owned: tuple[np.ndarray, np.ndarray] | None = None, max_epochs: int = 40, patience: int = 3,
                batch_size: int = 256, learning_rate: float = 1e-2, l2: float = 1e-3, visitors: float = 0.3,
                select: Examples | None = None, progress: Progress = SILENT) -> SessionFit:
    """Train the encoder on ``ex`` (user rows of ``users``, item rows of ``items``: the frozen
    towers' unit vectors). ``owned``: every (user row, item row) the customers had, left out
    of a known customer's softmax as serving leaves out what they bought. Of the trained
    encoder, the untrained one, the trained one that leaves a known customer's own vector
    alone (``base`` → ∞) and the grid of ``DECAYS`` × ``BASES`` (untrained and trained
    transform), the one that ranks the held-out examples best for known customers is kept:
    ``select`` (each customer's interaction before their latest, as serving meets next items),
    else a fifth of ``ex``."""
    default = SessionEncoder()
    lookup = _Owned(owned, len(users)) if owned is not None else None
    if len(ex) + (len(select) if select is not None else 0) < 10:
        return SessionFit(default, {"trained": False, "why": f"{len(ex)} next-item examples: too few to learn from"})
    rng = np.random.default_rng(seed)
    if select is not None and len(select) >= 2:
        val, train = select, ex
    else:
        order = rng.permutation(len(ex))
        n_val = max(2, len(ex) // 5)
        val, train = ex.take(np.sort(order[:n_val])), ex.take(np.sort(order[n_val:]))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SessionPooling(items.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    # as they are when already float32: a copy of 650,000 customers' vectors was 83 MB
    u_t, i_t = torch.from_numpy(np.asarray(users, np.float32)), torch.from_numpy(np.asarray(items, np.float32))
    best, best_state, stale, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    for epoch in range(1, max_epochs + 1):
        progress.status(f"training the session encoder: epoch {epoch} of at most {max_epochs}")
        model.train()
        perm = torch.from_numpy(rng.permutation(len(train)))
        total = 0.0
        for lo in range(0, len(train), batch_size):
            rows = perm[lo:lo + batch_size].numpy()
            own_mask = torch.rand(len(rows), generator=generator) >= visitors
            loss = _loss(model, u_t, i_t, _shortened(train.take(rows), rng), own_mask, temperature, generator,
                         lookup)
            loss = loss + l2 * model.delta.pow(2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        with torch.no_grad():
            model.eval()
            v = _held_out_loss(model, u_t, i_t, val, temperature, lookup, batch_size)
        history.append({"epoch": epoch, "train_loss": round(total / len(train), 5), "val_loss": round(v, 5)})
        if v < best - 1e-5:
            best, best_state, stale = v, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best_state)
    trained = model.to_numpy()
    candidates = {"untrained": default, "trained": trained, "own_vector_alone": replace(trained, base=OWN_ONLY)}
    # the softmax the gradient follows is not the top 10 serving shows: how fast older products
    # fade and how much a customer's own vector weighs are also picked on the held-out examples
    # (MovieLens 100K: decay 0.5 ranked next items ~20% better than 0.8, which the gradient kept)
    for decay in DECAYS:
        for base in BASES:
            candidates[f"decay {decay}, base {base}"] = replace(default, decay=decay, base=base)
            candidates[f"trained, decay {decay}, base {base}"] = replace(trained, decay=decay, base=base)
    seen = owned if owned is not None else (None, None)
    scores = {name: next_item(_scorer(enc.user_vectors(users[val.user], val.history, items), items), val, len(items),
                              *seen) for name, enc in candidates.items()}
    winner = max(scores, key=lambda name: (scores[name]["hit_at_10"], scores[name]["mrr_at_10"], name == "trained"))
    chosen = candidates[winner]
    ranked = sorted(scores, key=lambda n: -scores[n]["hit_at_10"])
    report = {"trained": winner.startswith("trained"), "kept": winner, "examples": len(train), "held_out": len(val),
              "held_out_are": "each customer's interaction before their latest" if val is select else
              "a random fifth of the examples", "epochs": len(history),
              "history": history, "candidates": len(candidates),
              "held_out_hit_at_10": {k: round(scores[k]["hit_at_10"], 4)
                                     for k in dict.fromkeys([*ranked[:5], "untrained", "trained", "own_vector_alone"])},
              "decay": round(chosen.decay, 4), "base": round(chosen.base, 4)}
    if winner == "untrained":
        report["why"] = "the trained encoder ranked the held-out examples no better than the untrained one"
    elif winner == "own_vector_alone":
        report["why"] = "known customers' next products followed their own vector better than their history"
    return SessionFit(chosen, report)


def carry(encoder: SessionEncoder, old: np.ndarray, new: np.ndarray, *, floor: float = 0.5
          ) -> tuple[SessionEncoder, dict[str, Any]]:
    """``encoder``, fitted on towers whose item vectors are ``old``, for towers that give the same
    products ``new`` (a refit: another basis of about the same geometry). Its scalars carry as
    they are; its transform is turned by the rotation that best maps ``old`` onto ``new``
    (orthogonal Procrustes), unless that rotation leaves the two further apart than ``floor``
    (mean cosine), when the transform is dropped (the identity: the untrained pooling)."""
    if encoder.transform is None:
        return encoder, {"transform": "none (the identity)"}
    u, _, vt = np.linalg.svd(old.astype(np.float64).T @ new.astype(np.float64))
    rotation = u @ vt  # rows: old @ rotation ≈ new
    moved = old @ rotation
    fit = float(np.mean(np.sum(unit(moved) * unit(new), axis=1)))
    if fit < floor:
        return replace(encoder, transform=None), {
            "transform": "dropped", "alignment": round(fit, 4),
            "why": f"the refit's item vectors match the evaluated ones only to a mean cosine of {fit:.2f}"}
    transform = rotation.T @ encoder.transform.astype(np.float64) @ rotation
    return replace(encoder, transform=transform.astype(np.float32)), {
        "transform": "rotated into the refit's basis", "alignment": round(fit, 4)}


class _Owned:
    """Each customer's products, for leaving them out of their softmax."""

    def __init__(self, owned: tuple[np.ndarray, np.ndarray], n_users: int) -> None:
        user, item = owned
        order = np.argsort(user, kind="stable")
        self.items = item[order]
        self.start = np.searchsorted(user[order], np.arange(n_users + 1))  # customer u: start[u]..start[u + 1]

    def pairs(self, users: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) of every product the customers of ``users`` had, but each row's ``keep``."""
        lo, hi = self.start[users], self.start[users + 1]
        n = hi - lo
        rows = np.repeat(np.arange(len(users)), n)
        items = self.items[np.repeat(lo, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
        other = items != keep[rows]
        return rows[other], items[other]


def _held_out_loss(model: SessionPooling, users: torch.Tensor, items: torch.Tensor, ex: Examples,
                   temperature: float, owned: _Owned | None, batch_size: int) -> float:
    """The mean loss of the held-out examples, as known customers, ``batch_size`` at a time: all
    5,000 at once made three (examples × products) matrices (0.3 GB at 5,000 products)."""
    total = 0.0
    for lo in range(0, len(ex), batch_size):
        part = ex.take(np.arange(lo, min(lo + batch_size, len(ex))))
        loss = _loss(model, users, items, part, torch.ones(len(part), dtype=torch.bool), temperature, None, owned)
        total += float(loss) * len(part)
    return total / len(ex)


def _shortened(ex: Examples, rng: np.random.Generator) -> Examples:
    """Each history cut to its latest 1..MAX_RECENT products at random: sessions at serving
    time are often short, while a long-time customer's training histories are all full."""
    keep = rng.integers(1, ex.history.shape[1] + 1, len(ex))
    history = np.where(np.arange(ex.history.shape[1])[None, :] >= ex.history.shape[1] - keep[:, None],
                       ex.history, -1)
    return Examples(ex.user, ex.item, history)


def _scorer(vectors: np.ndarray, items: np.ndarray) -> Any:
    return lambda idx: vectors[idx] @ items.T


def _loss(model: SessionPooling, users: torch.Tensor, items: torch.Tensor, ex: Examples, own_mask: torch.Tensor,
          temperature: float, generator: torch.Generator | None, owned: _Owned | None = None) -> torch.Tensor:
    history = torch.from_numpy(ex.history)
    mask = history >= 0
    vectors = model(users[torch.from_numpy(ex.user)], own_mask, items[history.clamp(min=0)], mask)
    target = torch.from_numpy(ex.item)
    if len(items) <= FULL_SOFTMAX_ITEMS:
        logits = vectors @ items.T / temperature
        rows = torch.arange(len(target)).unsqueeze(1).expand_as(history)
        hidden = mask & (history != target.unsqueeze(1))
        logits = logits.index_put((rows[hidden], history[hidden]), torch.tensor(float("-inf")))
        if owned is not None:  # a known customer's other products are left out, as serving leaves them out
            r, i = owned.pairs(ex.user, ex.item)
            known = own_mask.numpy()[r]
            logits = logits.index_put((torch.from_numpy(r[known]), torch.from_numpy(i[known].astype(np.int64))),
                                      torch.tensor(float("-inf")))
        return F.cross_entropy(logits, target)
    sample = torch.randint(len(items), (SAMPLED,), generator=generator)
    candidates = torch.cat([target, sample])
    logits = vectors @ items[candidates].T / temperature
    same = candidates.unsqueeze(0) == target.unsqueeze(1)
    same[:, :len(target)] = False
    logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(target)))
