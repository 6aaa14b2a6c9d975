"""Where each artifact lives under the artifacts URL: written by training,
read by the vector loader and the inference service, which never import training."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from recpipe.contracts.dataset import DatasetManifest
from recpipe.errors import InputError, NotPublished

ITEM_EMBEDDINGS = "embeddings/item_embeddings.csv"
USER_EMBEDDINGS = "embeddings/user_embeddings.csv"
ITEM_ATTRIBUTES = "embeddings/item_attributes.csv"
STATE_DICT = "model/best_model.pth"
TOWERS = "model/towers.npz"
MANIFEST = "model/manifest.json"
LOSS_PLOT = "model/loss.png"
SCALERS = {"user": "scalers/user_features.json", "item": "scalers/item_features.json"}
# what serving runs (the numpy towers and the encoders): `vectors load` copies these into the
# vector database with the embeddings, so a service always runs the model whose vectors it queries
SERVING_FILES = (TOWERS, *SCALERS.values())
EMBEDDING_DIM = 32  # the towers' output, and vector(32) in the vector tables


# the registry: every published model also kept whole under ``_versions/<version>/`` in the
# artifacts store (beside the seed's layout, which holds the latest), never changed after
VERSIONS = "_versions"


def registered(version: str) -> str:
    """The artifacts name of a registered model version (read like ``name`` with ``artifact_path``)."""
    if not version or "/" in version or version.startswith("."):
        raise InputError(f"{version!r} is not a model version", hint="`recpipe models list` shows them")
    return f"{VERSIONS}/{version}"


def artifact_path(name: str, path: str) -> str:
    """``path`` inside artifacts published as ``name`` ("" when they fill a whole bucket)."""
    return f"{name}/{path}" if name else path


class ModelManifest(BaseModel):
    """``model/manifest.json``: what training published. Written only by
    ``recpipe.training.pipeline``, read only through :meth:`read`. The nested documents
    (``training``, ``metrics``) depend on the objective; ``recpipe train --json`` shows them."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())
    model_version: str
    created_at: str
    recpipe_version: str
    objective: str  # retrieval | rating
    kind: str
    embedding_dim: int
    score: str  # what the served similarity means
    towers: dict[str, Any]
    features: dict[str, Any]  # the encoders' vocabularies and scalers
    counts: dict[str, int]
    training: dict[str, Any]  # options, history, best epoch, timings, what the published model saw
    metrics: dict[str, Any]  # the held-out evaluation and its baselines
    data: DatasetManifest  # the dataset it was trained on
    files: dict[str, Any]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def read(cls, store: Any, name: str) -> ModelManifest:
        """The manifest of the artifacts published as ``name`` in ``store`` (a ``Lake``)."""
        where = f"{store.location(name).rstrip('/')}/{MANIFEST}"
        doc = store.read_json(artifact_path(name, MANIFEST))
        if doc is None:
            raise NotPublished(f"no {MANIFEST} in the artifacts at {store.location(name)}",
                             hint="run `recpipe train` first, or point RECPIPE_ARTIFACTS_URL at the artifacts")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{where} is not a model manifest: {'.'.join(map(str, first['loc']))} "
                             f"{first['msg'].lower()}", hint="publish the model again with `recpipe train`") from exc
