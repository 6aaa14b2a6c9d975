"""The published model, as serving uses it: the numpy towers, the encoders and the version,
read from the artifacts (a directory or ``s3://…``) or from the vector database, which holds a
copy of the model whose embeddings it serves. ``ModelSource`` looks at ``model/manifest.json``
every few seconds and swaps in a newly published version."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recpipe.adapters.base import Lake
from recpipe.contracts.artifacts import SCALERS, TOWERS, ModelManifest, artifact_path
from recpipe.errors import InputError
from recpipe.inference.features import Encoder
from recpipe.inference.session import SessionEncoder
from recpipe.inference.towers import Towers


@dataclass(frozen=True)
class Model:
    version: str
    towers: Towers
    user_encoder: Encoder
    item_encoder: Encoder
    session: SessionEncoder = field(default_factory=SessionEncoder)  # how recent activity moves the user vector

    def user_embeddings(self, people: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings for ``{city, country, creditLimit}`` records, and per record whether its
        features say anything the model knows (a known city or country, or a credit limit)."""
        columns = {"city": [p.get("city") for p in people], "country": [p.get("country") for p in people],
                   "creditLimit": [p.get("creditLimit") for p in people]}
        x = self.user_encoder.encode(columns)
        usable = (x[:, :-1].any(axis=1)) | np.array([c is not None for c in columns["creditLimit"]])
        return self.towers.user(x), usable

    @classmethod
    def load(cls, store: Lake, name: str, manifest: ModelManifest | None = None) -> Model:
        """The model published in the artifacts; ``manifest``: model/manifest.json if the caller
        has already read it."""
        manifest = manifest or ModelManifest.read(store, name)
        return cls.from_files(manifest.model_version, lambda rel: store.read_bytes(artifact_path(name, rel)),
                              f"the artifacts at {store.location(name)}")

    @classmethod
    def from_files(cls, version: str, read: Callable[[str], bytes | None], where: str) -> Model:
        """The model from its serving files (``SERVING_FILES``), read by relative path."""
        def need(rel: str) -> bytes:
            data = read(rel)
            if data is None:
                raise InputError(f"no {rel} in {where}",
                                 hint="run `recpipe train` then `recpipe vectors load`")
            return data

        towers = Towers.load(io.BytesIO(need(TOWERS)))
        encoders = {k: Encoder.from_json(json.loads(need(path))) for k, path in SCALERS.items()}
        return cls(version, towers, encoders["user"], encoders["item"], towers.session or SessionEncoder())


class ModelSource:
    """The latest published model; checks for a newly published version at most every
    ``check_every`` seconds (one small read of the manifest) and loads it without a restart.
    Serving runs the model whose embeddings are loaded (``Recommender.model``); this one is
    what the next ``vectors load`` will switch in."""

    def __init__(self, store: Lake, name: str, *, check_every: float = 10.0) -> None:
        self.store, self.name, self.check_every = store, name, check_every
        self._manifest: ModelManifest | None = None
        self._model: Model | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def version(self) -> str:
        """The latest published version: the manifest only, the towers are not loaded."""
        return self._latest().model_version

    def get(self) -> Model:
        manifest = self._latest()
        model = self._model
        if model is None or model.version != manifest.model_version:
            with self._lock:
                if self._model is None or self._model.version != manifest.model_version:
                    self._model = Model.load(self.store, self.name, manifest)
                model = self._model
        return model

    def _latest(self) -> ModelManifest:
        now = time.monotonic()
        if self._manifest is not None and now - self._checked < self.check_every:
            return self._manifest
        with self._lock:
            if self._manifest is None or now - self._checked >= self.check_every:
                self._manifest, self._checked = ModelManifest.read(self.store, self.name), now
            return self._manifest
