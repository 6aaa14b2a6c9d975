"""The two towers in numpy, from the weights exported at training time (``model/towers.npz``).

Each tower is ``Linear → ReLU → … → Linear``; in the hybrid model a per-id embedding is
added for ids seen in training, and the result is L2-normalised, so a pair's score is the
dot product of two embeddings = their cosine similarity, in [-1, 1] (rating = 3 + 2·score).
The arrays use the torch layout (``weight`` is out × in) and load without pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from recpipe.inference.features import Encoded
from recpipe.inference.session import SessionEncoder

TOWERS = ("user", "item")
ROWS_AT_ONCE = 65_536  # inputs run through a tower this many at a time (650,000 customers: not 0.4 GB at once)


@dataclass
class Tower:
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight out×in, bias out) per Linear
    ids: np.ndarray | None = None  # ids with their own embedding (hybrid), in row order
    id_embedding: np.ndarray | None = None
    # the ids sorted, and each one's row: looked up by binary search (a dict of 620,000
    # customers' ids was 58 MB of Python objects)
    _sorted: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(0, np.int64))
    _order: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if self.ids is not None:
            self._order = np.argsort(self.ids, kind="stable")
            self._sorted = self.ids[self._order]

    @property
    def input_width(self) -> int:
        return int(self.layers[0][0].shape[1])

    @property
    def dim(self) -> int:
        return int(self.layers[-1][0].shape[0])

    def __call__(self, x: np.ndarray | Encoded, ids: Sequence[Any] | np.ndarray | None = None) -> np.ndarray:
        """Unit-length embeddings for encoded inputs ``x`` (n × input_width; ``Encoded`` rows
        are made dense a block at a time, each written into the result: not a list of blocks
        beside it)."""
        if len(x) > ROWS_AT_ONCE:
            out = np.empty((len(x), self.dim), dtype=np.float32)
            for lo in range(0, len(x), ROWS_AT_ONCE):
                out[lo:lo + ROWS_AT_ONCE] = self(x[lo:lo + ROWS_AT_ONCE],
                                                 None if ids is None else ids[lo:lo + ROWS_AT_ONCE])
            return out
        h = np.asarray(x, dtype=np.float32)
        if h.ndim != 2 or h.shape[1] != self.input_width:
            raise ValueError(f"tower input must be n × {self.input_width}, got {h.shape}")
        last = len(self.layers) - 1
        for k, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if k < last:
                h = np.maximum(h, 0, out=h)
        if ids is not None and self.id_embedding is not None:
            rows = self.id_rows(ids)
            known = rows >= 0
            h[known] += self.id_embedding[rows[known]]
        norm = np.linalg.norm(h, axis=1, keepdims=True)
        return (h / np.maximum(norm, 1e-12)).astype(np.float32)

    def id_rows(self, ids: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Each id's row of the id embedding (-1: an id without one, or of another type)."""
        asked = np.asarray(ids)
        if not len(self._sorted) or not len(asked):
            return np.full(len(asked), -1, dtype=np.int64)
        numbers = self._sorted.dtype.kind in "iu"
        if asked.dtype.kind not in ("iuf" if numbers else "U"):  # mixed types: each on its own
            kinds = (int, float, np.integer, np.floating) if numbers else (str,)
            return np.array([self.id_rows([v])[0] if isinstance(v, kinds) and not isinstance(v, bool) else -1
                             for v in ids], dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, asked), len(self._sorted) - 1)
        return np.where(self._sorted[at] == asked, self._order[at], -1).astype(np.int64)


@dataclass
class Towers:
    user: Tower
    item: Tower
    session: SessionEncoder | None = None  # how recent activity moves the user vector (None: the untrained default)

    @property
    def dim(self) -> int:
        return self.user.dim

    @property
    def hybrid(self) -> bool:
        return self.user.id_embedding is not None

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in TOWERS:
            tower: Tower = getattr(self, name)
            for k, (w, b) in enumerate(tower.layers):
                out[f"{name}.layer{k}.weight"] = w
                out[f"{name}.layer{k}.bias"] = b
            if tower.id_embedding is not None and tower.ids is not None:
                out[f"{name}.ids"] = tower.ids
                out[f"{name}.id_embedding"] = tower.id_embedding
        if self.session is not None:
            out |= self.session.to_arrays()
        return out

    def save(self, target: str | Path | BinaryIO) -> None:
        np.savez(target, **self.arrays())  # type: ignore[arg-type]  # numpy's stub types the first keyword

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Towers:
        towers = {}
        for name in TOWERS:
            layers: list[tuple[np.ndarray, np.ndarray]] = []
            while f"{name}.layer{len(layers)}.weight" in arrays:
                k = len(layers)
                layers.append((np.asarray(arrays[f"{name}.layer{k}.weight"], np.float32),
                               np.asarray(arrays[f"{name}.layer{k}.bias"], np.float32)))
            if not layers:
                raise ValueError(f"the exported towers have no {name} layers")
            ids = arrays.get(f"{name}.ids")
            emb = arrays.get(f"{name}.id_embedding")
            towers[name] = Tower(layers, ids, None if emb is None else np.asarray(emb, np.float32))
        return cls(**towers, session=SessionEncoder.from_arrays(arrays))

    @classmethod
    def load(cls, source: str | Path | BinaryIO) -> Towers:
        with np.load(source, allow_pickle=False) as data:
            return cls.from_arrays({k: data[k] for k in data.files})
