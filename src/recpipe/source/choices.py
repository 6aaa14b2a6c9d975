"""Which products each customer buys: a known choice model, so that a ranking can be judged
against the truth (the generator's oracle).

For customer ``u`` and product ``i``::

    logit(u, i) = beta * <a_u, b_i> + log popularity_i
    a_u = user_vec(city, country, creditLimit) + taste_u       taste_u ~ N(0, taste_sd²) per dimension
    b_i = item_vec(productLine, productScale, MSRP) + taste_i  taste_i ~ N(0, item_taste_sd²)

``user_vec``/``item_vec`` are the latent features of the rating model (``generate.py``): people
buy what they would rate well, plus a taste of their own that their features do not show.
``beta`` scales the personal part to ``choice_signal_sd`` nats across random pairs. A customer
with n order lines buys n distinct products drawn without replacement from softmax(logit(u, ·))
(the Gumbel top-n trick); products nobody may buy (unsold) are never drawn.

The oracle ranks every product by ``logit(u, ·)``: it knows everything but the draw itself,
so no model can expect to rank better. Written as embeddings, ``[beta·a_u, 1] · [b_i, log
popularity_i]``, it is scored like any two-tower model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recpipe import ranking

UNSOLD_LOGIT = -1e3  # finite, so the oracle's dot products stay finite; never drawn anyway
HOLDOUT = 0.2  # the oracle's figures: this share of each customer's products is held out
ORACLE_SAMPLE = 5_000  # ... for at most this many customers, drawn at random
CHUNK = 4096  # customers scored at once


@dataclass(frozen=True)
class ChoiceModel:
    user: np.ndarray  # (customers, k + 1) float64: [beta * a_u, 1]
    item: np.ndarray  # (products, k + 1) float64: [b_i, log popularity_i]
    sellable: np.ndarray  # bool per product
    beta: float
    sequence: Any = None  # sequences.Transitions: the order products are taken in (None: an older shop)

    def logits(self, rows: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        return self.user[rows].astype(dtype) @ self.item.T.astype(dtype)


def choice_model(spec: Any, rng: np.random.Generator, user_vec: np.ndarray, item_vec: np.ndarray,
                 popularity: np.ndarray) -> ChoiceModel:
    """``popularity``: a weight per product, 0 for products nobody buys."""
    a = rng.normal(0, spec.taste_sd, user_vec.shape)
    a += user_vec  # in place (a sum either way round is the same): one customers × k array less
    b = item_vec + rng.normal(0, spec.item_taste_sd, item_vec.shape)
    probe_u = rng.integers(0, len(a), 20_000)
    probe_i = rng.integers(0, len(b), 20_000)
    raw_sd = float(np.einsum("ij,ij->i", a[probe_u], b[probe_i]).std()) or 1.0
    beta = spec.choice_signal_sd / raw_sd
    sellable = popularity > 0
    log_pop = np.where(sellable, np.log(np.where(sellable, popularity, 1.0)), UNSOLD_LOGIT)
    user = np.ones((len(a), a.shape[1] + 1))  # [beta * a, 1], made where it is kept
    np.multiply(a, beta, out=user[:, :-1])
    del a
    item = np.hstack([b, log_pop[:, None]])
    return ChoiceModel(user, item, sellable, beta)


def draw(model: ChoiceModel, rng: np.random.Generator, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each customer ``u``, ``min(wanted[u], sellable products)`` distinct products drawn
    from softmax(logit(u, ·)) without replacement. Returns (customer row, product row) pairs,
    grouped by customer in row order, each customer's products in the order drawn."""
    cap = int(model.sellable.sum())
    wanted = np.minimum(wanted, cap)
    buyers = np.flatnonzero(wanted > 0)
    users, items = [], []
    for lo in range(0, len(buyers), CHUNK):
        rows = buyers[lo:lo + CHUNK]
        m = wanted[rows]
        noise = rng.standard_exponential((len(rows), len(model.sellable)), dtype=np.float32)
        np.log(np.maximum(noise, 1e-30, out=noise), out=noise)  # -log(Exp(1)) is Gumbel noise
        keys = model.logits(rows, np.float32)
        keys -= noise
        keys[:, ~model.sellable] = -np.inf
        top = ranking.top_k(keys, int(m.max()))
        keep = np.arange(top.shape[1])[None, :] < m[:, None]
        users.append(np.repeat(rows, m))
        items.append(top[keep])
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users).astype(np.int64), np.concatenate(items).astype(np.int64)


def oracle_figures(model: ChoiceModel, user: np.ndarray, item: np.ndarray, rng: np.random.Generator
                   ) -> dict[str, Any]:
    """The oracle's Recall@10 / NDCG@10 / coverage when ``HOLDOUT`` of each customer's distinct
    products (``user``/``item`` pairs) are hidden at random and the rest are known, over at
    most ``ORACLE_SAMPLE`` customers. Training scores the oracle again on its own split."""
    if len(user) == 0:
        return {"recall_at_10": None, "ndcg_at_10": None, "coverage": None, "users": 0, "holdout": HOLDOUT}
    customers = np.unique(user)
    if len(customers) > ORACLE_SAMPLE:
        keep = np.isin(user, rng.choice(customers, ORACLE_SAMPLE, replace=False))
        user, item = user[keep], item[keep]
    test = ranking.customer_quantiles(user, rng) < HOLDOUT
    h = ranking.Holdout(len(model.user), len(model.item), user[~test], item[~test], user[test], item[test])
    figures = ranking.evaluate(model.logits, h)
    return {**figures, "holdout": HOLDOUT}
