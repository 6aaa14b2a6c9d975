"""``recpipe train`` end to end: read and check the data, fit the encoders and the model,
evaluate on held-out ratings, stage every artifact and publish them in one step.

With ``hybrid`` training runs in two phases: the content model first (features only, to
early stopping), then per-id embeddings are added and training continues. The content
model's scores are kept for the comparison in ``metrics.content_only``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recpipe import __version__
from recpipe.adapters.base import Lake
from recpipe.errors import RecpipeError
from recpipe.etl.contract import DATASET
from recpipe.inference.features import (
    ITEM_CATEGORICAL,
    ITEM_NUMERIC,
    USER_CATEGORICAL,
    USER_NUMERIC,
    Encoder,
)
from recpipe.training import artifacts, evaluate
from recpipe.training.dataset import Ratings, Split, read_ratings, split
from recpipe.training.fit import Epoch, FitOptions, FitResult

AGREEMENT = 1e-5  # numpy towers vs torch, max absolute difference per embedding value


@dataclass(frozen=True)
class TrainOptions:
    fit: FitOptions = field(default_factory=FitOptions)
    hybrid: bool = False
    validation: float = 0.1
    test: float = 0.1


class Progress(Protocol):
    """What training reports as it goes (the CLI shows bars)."""

    def status(self, text: str) -> None: ...
    def phase(self, name: str, samples_per_epoch: int, max_epochs: int) -> None: ...
    def batch(self, samples: int) -> None: ...
    def epoch(self, epoch: Epoch) -> None: ...


class _Quiet(Progress):
    """Reports nothing: the protocol's methods do nothing."""


def train(lake: Lake, store: Lake, name: str, options: TrainOptions | None = None,
          progress: Progress | None = None) -> dict[str, Any]:
    """Train on ``<lake>/ratings_ml_training``; publish artifacts as ``name`` in ``store``."""
    from recpipe.training.fit import fit
    from recpipe.training.model import TwoTower, torch

    options = options or TrainOptions()
    progress = progress or _Quiet()
    started = time.perf_counter()
    store.check_writable()
    progress.status(f"reading the training dataset from {lake.location(DATASET)}")
    data = read_ratings(lake)
    rows = split(len(data), seed=options.fit.seed, validation=options.validation, test=options.test)
    p = prepare(data, rows)
    encoders, xu, xi, inputs, user_ids, item_ids = p.encoders, p.xu, p.xi, p.inputs, p.user_ids, p.item_ids
    read_seconds = time.perf_counter() - started

    torch.manual_seed(options.fit.seed)
    hp = options.fit
    n_ids = {"user": len(user_ids), "item": len(item_ids)} if options.hybrid else {"user": 0, "item": 0}
    model = TwoTower(xu.shape[1], xi.shape[1], dim=hp.dim, hidden=hp.hidden, user_ids=n_ids["user"],
                     item_ids=n_ids["item"], id_dim=hp.id_dim)
    runs: list[FitResult] = []
    heldout = evaluate.Heldout(data.user, data.item, data.rating, len(data.users), len(data.items),
                               rows.train, np.concatenate([rows.train, rows.validation]), rows.test)
    phases = [("content", False)] + ([("hybrid", True)] if options.hybrid else [])
    content_metrics = None
    for phase, use_ids in phases:
        progress.phase(phase, len(rows.train), hp.max_epochs)
        runs.append(fit(model, inputs, rows.train, rows.validation, hp, phase=phase, use_ids=use_ids,
                        on_batch=progress.batch, on_epoch=progress.epoch))
        if options.hybrid and phase == "content":
            content = model.to_numpy()
            content_metrics = evaluate.model_metrics(content.user(xu), content.item(xi), heldout)

    progress.status("evaluating on the held-out ratings")
    customer_ids = data.users["customerNumber"].to_numpy()
    product_ids = np.array(data.items["productCode"].to_pylist())
    towers = model.to_numpy(customer_ids[user_ids] if options.hybrid else None,
                            product_ids[item_ids] if options.hybrid else None)
    user_emb = towers.user(xu, customer_ids)
    item_emb = towers.item(xi, product_ids)
    agreement = _agreement(model, inputs, user_emb, item_emb, options.hybrid)
    metrics = evaluate.model_metrics(user_emb, item_emb, heldout)
    metrics["baselines"] = evaluate.baselines(heldout)
    floors = ((data.manifest.get("generator") or {}).get("rmse_floor")) or None
    if floors:
        metrics["generator_floor"] = {"features": floors.get("features"), "identity": floors.get("identity")}
    if content_metrics is not None:
        metrics["content_only"] = content_metrics
        fallback = evaluate.model_metrics(towers.user(xu), towers.item(xi), heldout)
        metrics["features_fallback"] = {k: fallback[k] for k in ("rmse", "mae")}

    history = [asdict(e) for r in runs for e in r.history]
    offsets = np.cumsum([0.0] + [r.history[-1].seconds for r in runs[:-1]])
    best = sum(len(r.history) for r in runs[:-1]) + runs[-1].best
    to_best = float(offsets[-1] + runs[-1].history[runs[-1].best].seconds)
    samples = sum(r.samples for r in runs)
    train_seconds = sum(r.train_seconds for r in runs)
    version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    manifest: dict[str, Any] = {
        "model_version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "recpipe_version": __version__,
        "kind": "hybrid" if options.hybrid else "content",
        "embedding_dim": hp.dim,
        "score": "cosine similarity of the L2-normalised embeddings; rating = 3 + 2 * score",
        "towers": {tower: {"input_width": int(x.shape[1]), "hidden": list(hp.hidden), "id_embeddings": n_ids[tower],
                           "inputs": encoders[tower].input_names} for tower, x in (("user", xu), ("item", xi))},
        "features": {k: e.to_json() for k, e in encoders.items()},
        "counts": {"users": len(data.users), "items": len(data.items), "ratings": len(data),
                   "train": len(rows.train), "validation": len(rows.validation), "test": len(rows.test)},
        "training": {
            "options": hp.to_json() | {"validation": options.validation, "test": options.test},
            "epochs": len(history), "best_epoch": best + 1, "history": history,
            "samples": samples, "samples_per_second": round(samples / train_seconds, 1) if train_seconds else None,
            "seconds": {"read": round(read_seconds, 3), "to_best_epoch": round(to_best, 3),
                        "training": round(float(offsets[-1] + runs[-1].history[-1].seconds), 3)},
            "numpy_agreement": agreement,
        },
        "metrics": metrics,
        "data": data.manifest,
        "files": {"item_embeddings": artifacts.ITEM_EMBEDDINGS, "user_embeddings": artifacts.USER_EMBEDDINGS,
                  "item_attributes": artifacts.ITEM_ATTRIBUTES,
                  "state_dict": artifacts.STATE_DICT, "towers": artifacts.TOWERS, "loss_plot": artifacts.LOSS_PLOT,
                  "scalers": artifacts.SCALERS},
    }
    progress.status(f"publishing the artifacts to {store.location(name)}")
    with store.stage(name or "ml-artifacts") as staged:
        root = Path(staged.location)
        artifacts.write_embeddings(root / artifacts.USER_EMBEDDINGS, customer_ids, user_emb)
        artifacts.write_embeddings(root / artifacts.ITEM_EMBEDDINGS, product_ids, item_emb)
        artifacts.write_item_attributes(root / artifacts.ITEM_ATTRIBUTES, data.items)
        artifacts.write_state_dict(root, model)
        artifacts.write_towers(root, towers)
        artifacts.write_encoders(root, encoders)
        artifacts.plot_loss(root / artifacts.LOSS_PLOT, history, best,
                            f"recpipe {manifest['kind']} model {version}")
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        artifacts.write_json(root / artifacts.MANIFEST, _finite(manifest))
        store.publish(name, staged, manifest=artifacts.MANIFEST)
    return manifest


@dataclass
class Prepared:
    """The model's inputs: fitted encoders, encoded features, ids that get an embedding."""

    encoders: dict[str, Encoder]
    xu: np.ndarray
    xi: np.ndarray
    inputs: Any  # training.fit.Inputs
    user_ids: np.ndarray  # rows of users seen in training (hybrid id embeddings)
    item_ids: np.ndarray


def prepare(data: Ratings, rows: Split) -> Prepared:
    from recpipe.training.fit import Inputs

    encoders = _fit_encoders(data, rows)
    xu = encoders["user"].encode(_columns(data.users))
    xi = encoders["item"].encode(_columns(data.items))
    user_ids, uid = _id_rows(data.user[rows.train], len(data.users))
    item_ids, iid = _id_rows(data.item[rows.train], len(data.items))
    return Prepared(encoders, xu, xi, Inputs.build(xu, xi, data.user, data.item, data.rating, uid, iid),
                    user_ids, item_ids)


def _fit_encoders(data: Ratings, rows: Split) -> dict[str, Encoder]:
    """Fitted on the customers and products of the training split only."""
    users = data.users.take(np.unique(data.user[rows.train]))
    items = data.items.take(np.unique(data.item[rows.train]))
    return {"user": Encoder.fit(_columns(users), USER_CATEGORICAL, USER_NUMERIC),
            "item": Encoder.fit(_columns(items), ITEM_CATEGORICAL, ITEM_NUMERIC)}


def _columns(table: Any) -> dict[str, Any]:
    return {name: table[name] for name in table.column_names}


def _id_rows(train_rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Entities seen in training (their rows) and, per entity row, its id-embedding row or
    ``len(seen)`` (the padding row: no id embedding)."""
    seen = np.unique(train_rows)
    index = np.full(n, len(seen), dtype=np.int64)
    index[seen] = np.arange(len(seen))
    return seen, index


def _agreement(model: Any, inputs: Any, user_emb: np.ndarray, item_emb: np.ndarray, hybrid: bool) -> dict[str, float]:
    """The numpy towers reproduce torch's embeddings; anything else is a bug worth stopping for."""
    from recpipe.training.model import torch

    with torch.no_grad():
        model.eval()
        tu = model.user_embedding(inputs.xu, inputs.uid if hybrid else None).numpy()
        ti = model.item_embedding(inputs.xi, inputs.iid if hybrid else None).numpy()
    diff = max(float(np.abs(tu - user_emb).max()), float(np.abs(ti - item_emb).max()))
    if diff > AGREEMENT:
        raise RecpipeError(f"the numpy towers differ from torch by {diff:.2e} (> {AGREEMENT})",
                           hint="this is a bug in recpipe: please report it; nothing was published")
    return {"max_abs_diff": diff, "tolerance": AGREEMENT}


def _finite(doc: Any) -> Any:
    """JSON has no NaN: undefined metrics (e.g. no relevant held-out rating) become null."""
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_finite(v) for v in doc]
    if isinstance(doc, float) and not np.isfinite(doc):
        return None
    return doc
