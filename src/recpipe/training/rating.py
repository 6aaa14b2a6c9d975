"""``recpipe train --objective rating``: the seed's model, judged by RMSE.

A seeded 80/10/10 split of the ratings; the cosine of a pair regresses the rating scaled to
[-1, 1]. With ``hybrid`` training runs in two phases: the content model first (features only,
to early stopping), then per-id embeddings are added and training continues; the content
model's scores are kept for the comparison in ``metrics.content_only``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recpipe.progress import Progress
from recpipe.training import evaluate
from recpipe.training.dataset import Ratings, split
from recpipe.training.fit import FitResult, fit
from recpipe.training.inputs import Trained, prepare
from recpipe.training.model import torch
from recpipe.training.objectives import Rating

SCORE = "cosine similarity of the L2-normalised embeddings; rating = 3 + 2 * score"


def train_rating(data: Ratings, options: Any, progress: Progress) -> Trained:
    hp = options.hp
    rows = split(len(data), seed=hp.seed, validation=options.validation, test=options.test_share)
    p = prepare(data, rows.train)
    torch.manual_seed(hp.seed)
    model = p.new_model(hp, ids=options.hybrid, id_dim=hp.id_dim)
    heldout = evaluate.Heldout(data.user, data.item, data.rating, len(data.users), len(data.items),
                               rows.train, np.concatenate([rows.train, rows.validation]), rows.test)
    runs: list[FitResult] = []
    content_metrics = None
    for phase, use_ids in [("content", False)] + ([("hybrid", True)] if options.hybrid else []):
        objective = Rating(p.inputs, rows.validation, use_ids=use_ids, id_l2=hp.id_l2)
        runs.append(fit(model, objective, rows.train, hp, phase=phase, progress=progress))
        if options.hybrid and phase == "content":
            content = model.to_numpy()
            content_metrics = evaluate.model_metrics(content.user(p.xu), content.item(p.xi), heldout)

    progress.status("evaluating on the held-out ratings")
    customer_ids = data.users["customerNumber"].to_numpy()
    product_ids = np.array(data.items["productCode"].to_pylist())
    trained = Trained("hybrid" if options.hybrid else "content", SCORE, model, p, options.hybrid, runs, {},
                      {"train": len(rows.train), "validation": len(rows.validation), "test": len(rows.test)}, hp)
    towers = trained.towers(customer_ids, product_ids)
    metrics: dict[str, Any] = evaluate.model_metrics(towers.user(p.xu, customer_ids), towers.item(p.xi, product_ids), heldout)
    metrics["baselines"] = evaluate.baselines(heldout)
    floors = ((data.manifest.generator or {}).get("rmse_floor")) or None
    if floors:
        metrics["generator_floor"] = {"features": floors.get("features"), "identity": floors.get("identity")}
    if content_metrics is not None:
        metrics["content_only"] = content_metrics
        fallback = evaluate.model_metrics(towers.user(p.xu), towers.item(p.xi), heldout)
        metrics["features_fallback"] = {k: fallback[k] for k in ("rmse", "mae")}
    trained.metrics = {"objective": "rating", **metrics}
    return trained
