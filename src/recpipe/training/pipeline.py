"""The training stage's entry point (``run``): read and check the data, train with the chosen objective
(``retrieval.py``, the default, or ``rating.py``), check that the numpy towers reproduce torch,
stage every artifact and publish them in one step.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recpipe import __version__
from recpipe.adapters.base import Lake
from recpipe.contracts.artifacts import MANIFEST, ModelManifest, artifact_path, registered
from recpipe.errors import InputError, InternalError
from recpipe.progress import SILENT, Progress
from recpipe.training import artifacts
from recpipe.training.fit import FitOptions
from recpipe.training.reading import read_ratings

AGREEMENT = 1e-5  # numpy towers vs torch, max absolute difference per embedding value
AGREEMENT_CUSTOMERS = 50_000
OBJECTIVES = ("retrieval", "rating")


@dataclass(frozen=True)
class TrainOptions:
    fit: FitOptions = field(default_factory=FitOptions)
    objective: str = "retrieval"
    hybrid: bool = False  # rating objective: add id embeddings in a second phase
    refit: bool = True  # retrieval: publish a model refit on every interaction
    # retrieval: also rank with the rating model trained on the same split; None: up to
    # retrieval.RATING_BASELINE_MAX interactions (above, it costs more than the model itself)
    rating_baseline: bool | None = None
    validation: float = 0.1
    test: float | None = None  # default: 0.2 of each customer's interactions (retrieval), 0.1 (rating)
    cold_start: float = 0.05  # retrieval: share of customers held out whole
    events: bool = True  # also learn from the lake's events dataset (training.events)

    @property
    def hp(self) -> FitOptions:
        """The fit options with the objective's defaults filled in."""
        return self.fit.resolved(self.objective)

    @property
    def test_share(self) -> float:
        return self.test if self.test is not None else (0.2 if self.objective == "retrieval" else 0.1)

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"unknown objective {self.objective!r}", hint=f"use one of: {', '.join(OBJECTIVES)}")
        if self.hybrid and self.objective != "rating":
            raise InputError("--hybrid goes with --objective rating",
                             hint="the retrieval objective always learns id embeddings beside the features")
        if not 0 < self.test_share + self.validation < 1 or not 0 <= self.cold_start < 1:
            raise InputError("the held-out shares must leave something to train on",
                             hint="validation + test below 1, cold-start share in [0, 1)")


def run(lake: Lake, store: Lake, name: str, options: TrainOptions | None = None,
        progress: Progress = SILENT) -> ModelManifest:
    """Train on ``<lake>/ratings_ml_training``; publish artifacts as ``name`` in ``store``."""
    from recpipe.training.rating import train_rating
    from recpipe.training.retrieval import train_retrieval

    options = options or TrainOptions()
    options.check()
    started = time.perf_counter()
    store.check_writable()
    data = read_ratings(lake, progress)
    data, used = _with_events(lake, data, options.events, progress)
    read_seconds = time.perf_counter() - started
    trained = (train_retrieval if options.objective == "retrieval" else train_rating)(data, options, progress)

    hp = trained.options
    customer_ids = data.users["customerNumber"].to_numpy()
    product_ids = np.array(data.items["productCode"].to_pylist())
    towers = trained.towers(customer_ids, product_ids)
    p = trained.prepared
    item_emb = towers.item(p.xi, product_ids)
    agreement = _agreement(trained.model, p.inputs, towers, customer_ids, item_emb, trained.use_ids)
    runs = trained.runs
    history = [asdict(e) for r in runs for e in r.history]
    offsets = np.cumsum([0.0] + [r.history[-1].seconds for r in runs[:-1]])
    best = sum(len(r.history) for r in runs[:-1]) + runs[-1].best
    to_best = float(offsets[-1] + runs[-1].history[runs[-1].best].seconds)
    samples = sum(r.samples for r in runs)
    train_seconds = sum(r.train_seconds for r in runs)
    version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    n_ids = {"user": len(p.user_ids) if trained.use_ids else 0, "item": len(p.item_ids) if trained.use_ids else 0}
    doc: dict[str, Any] = {
        "model_version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "recpipe_version": __version__,
        "objective": options.objective,
        "kind": trained.kind,
        "embedding_dim": hp.dim,
        "score": trained.score,
        "towers": {tower: {"input_width": int(x.shape[1]), "hidden": list(hp.hidden), "id_embeddings": n_ids[tower],
                           "inputs": p.encoders[tower].input_names} for tower, x in (("user", p.xu), ("item", p.xi))},
        "features": {k: e.to_json() for k, e in p.encoders.items()},
        "counts": {"users": len(data.users), "items": len(data.items), "ratings": data.manifest.rows,
                   "interactions": len(data), **trained.counts},
        "training": {
            "options": hp.to_json() | {"validation": options.validation, "test": options.test_share,
                                       "cold_start": options.cold_start, "refit": options.refit},
            "epochs": len(history), "best_epoch": best + 1, "history": history,
            "samples": samples, "samples_per_second": round(samples / train_seconds, 1) if train_seconds else None,
            "seconds": {"read": round(read_seconds, 3), "to_best_epoch": round(to_best, 3),
                        "training": round(float(offsets[-1] + runs[-1].history[-1].seconds), 3)},
            "numpy_agreement": agreement,
            "events": used,
            **trained.extra,
        },
        "metrics": trained.metrics,
        "data": data.manifest.to_json(),
        "files": {"item_embeddings": artifacts.ITEM_EMBEDDINGS, "user_embeddings": artifacts.USER_EMBEDDINGS,
                  "item_attributes": artifacts.ITEM_ATTRIBUTES,
                  "state_dict": artifacts.STATE_DICT, "towers": artifacts.TOWERS, "loss_plot": artifacts.LOSS_PLOT,
                  "scalers": artifacts.SCALERS},
    }
    progress.status(f"publishing the artifacts to {store.location(name)}")
    with store.stage(name or "ml-artifacts") as staged:
        root = Path(staged.location)
        artifacts.write_state_dict(root, trained.model)
        # the model is written: let it go before the customers' vectors are made (its id table
        # is 83 MB at 650,000 customers), and make them a block at a time as they are written
        # (all at once, 83 MB more)
        trained.model = None
        artifacts.write_embeddings(root / artifacts.USER_EMBEDDINGS, customer_ids,
                                   lambda lo, hi: towers.user(p.xu[lo:hi], customer_ids[lo:hi]))
        artifacts.write_embeddings(root / artifacts.ITEM_EMBEDDINGS, product_ids, item_emb)
        artifacts.write_item_attributes(root / artifacts.ITEM_ATTRIBUTES, data.items)
        artifacts.write_towers(root, towers)
        artifacts.write_encoders(root, p.encoders)
        artifacts.plot_loss(root / artifacts.LOSS_PLOT, history, best,
                            f"recpipe {trained.kind} model {version}")
        doc["seconds"] = round(time.perf_counter() - started, 3)
        manifest = ModelManifest.model_validate(_finite(doc))  # a mismatch here is a bug: it fails loudly
        (root / artifacts.MANIFEST).write_text(manifest.to_text(), encoding="utf-8")
        progress.status(f"registering model {version}")
        register(store, name, root, version)
        store.publish(name, staged, manifest=artifacts.MANIFEST)
    return manifest


def register(store: Lake, name: str, root: Path, version: str) -> None:
    """Keep the model whole in the registry (``contracts.artifacts.VERSIONS``), its manifest
    last: a version the registry lists is complete."""
    target = registered(version)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    for rel in [*(f for f in files if f != MANIFEST), MANIFEST]:
        store.write_file(artifact_path(target, rel), root / rel)


def _with_events(lake: Lake, data: Any, wanted: bool, progress: Progress) -> tuple[Any, dict[str, Any]]:
    """The ratings with the lake's events added (``training.events``), and what was used."""
    if not wanted:
        return data, {"used": False, "why": "--no-events"}
    from recpipe.contracts.activity import EVENTS, SERVED_PREFIX
    from recpipe.etl.online import read_manifest, read_online
    from recpipe.training.events import add_events

    manifest = read_manifest(lake)
    if manifest is None:
        return data, {"used": False, "why": f"no events in {lake.location(EVENTS)} (`recpipe etl events` reads them)"}
    progress.status(f"reading the events from {lake.location(EVENTS)}")
    events = read_online(lake, EVENTS, ["customer_number", "product_code", "kind", "event_time"])
    data, used = add_events(data, events, [h for h in manifest.hours if not h.startswith(SERVED_PREFIX)])
    return data, {"used": True, **used.to_json()}


def _agreement(model: Any, inputs: Any, towers: Any, customer_ids: np.ndarray, item_emb: np.ndarray,
               hybrid: bool) -> dict[str, Any]:
    """The numpy towers reproduce torch's embeddings; anything else is a bug worth stopping for.
    Every product, and every customer up to ``AGREEMENT_CUSTOMERS`` (a seeded sample beyond)."""
    from recpipe.training.model import torch

    rows = np.arange(len(customer_ids))
    if len(rows) > AGREEMENT_CUSTOMERS:
        rows = np.sort(np.random.default_rng(0).choice(rows, AGREEMENT_CUSTOMERS, replace=False))
    with torch.no_grad():
        model.eval()
        r = torch.from_numpy(rows)
        tu = model.user_embedding(inputs.user_x(r), inputs.uid[r] if hybrid else None).numpy()
        ti = model.item_embedding(inputs.item_x(), inputs.iid if hybrid else None).numpy()
    user_emb = towers.user(inputs.xu[rows], customer_ids[rows])
    diff = max(float(np.abs(tu - user_emb).max()), float(np.abs(ti - item_emb).max()))
    if diff > AGREEMENT:
        raise InternalError(f"the numpy towers differ from torch by {diff:.2e} (> {AGREEMENT})")
    return {"max_abs_diff": diff, "tolerance": AGREEMENT, "customers": len(rows), "products": len(item_emb)}


def _finite(doc: Any) -> Any:
    """JSON has no NaN: undefined metrics (e.g. no relevant held-out rating) become null."""
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_finite(v) for v in doc]
    if isinstance(doc, float) and not np.isfinite(doc):
        return None
    return doc
