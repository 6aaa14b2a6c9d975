"""Artifacts with known embeddings, for vector-database tests (no training needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recpipe.contracts.artifacts import MANIFEST
from recpipe.training.artifacts import (
    ITEM_ATTRIBUTES,
    ITEM_EMBEDDINGS,
    USER_EMBEDDINGS,
    write_embeddings,
    write_item_attributes,
)

LINES = ("Classic Cars", "Motorcycles", "Planes", "Ships", "Trains")


@dataclass
class Known:
    items: list[str]
    item_vectors: np.ndarray
    lines: list[str]
    stock: list[int]
    users: list[int]
    user_vectors: np.ndarray
    version: str


def clustered(n: int, rng: np.random.Generator, dim: int = 32, clusters: int = 12) -> np.ndarray:
    centers = rng.normal(size=(clusters, dim))
    v = centers[rng.integers(0, clusters, n)] + 0.4 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def write_artifacts(root: Path, *, items: int = 300, users: int = 40, seed: int = 0, version: str = "v1",
                    metrics: dict[str, object] | None = None) -> Known:
    rng = np.random.default_rng(seed)
    item_ids = [f"S{10 + k % 90}_{1000 + k}" for k in range(items)]
    iv, uv = clustered(items, rng), clustered(users, rng)
    lines = [LINES[k % len(LINES)] for k in range(items)]
    stock = [0 if k % 7 == 0 else int(rng.integers(1, 9000)) for k in range(items)]
    user_ids = [103 + k for k in range(users)]
    write_embeddings(root / ITEM_EMBEDDINGS, item_ids, iv)
    write_embeddings(root / USER_EMBEDDINGS, user_ids, uv)
    write_item_attributes(root / ITEM_ATTRIBUTES, pa.table({"productCode": item_ids, "productLine": lines,
                                                            "quantityInStock": pa.array(stock, pa.int32())}))
    (root / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).write_text(json.dumps(hand_made_model_manifest(version, len(item_ids), len(user_ids))
                                            | {"metrics": metrics or {}}))
    return Known(item_ids, iv, lines, stock, user_ids, uv, version)


def exact(query: np.ndarray, known: Known, k: int, *, skip: set[str] = frozenset(),  # type: ignore[assignment]
          in_stock: bool = False, line: str | None = None) -> list[tuple[str, float]]:
    """Top-k by cosine in numpy, with the same rules, ties by id."""
    q = query / np.linalg.norm(query)
    scores = known.item_vectors @ q
    rows = [(i, float(s)) for i, s in zip(known.items, scores, strict=True)
            if i not in skip and (not in_stock or known.stock[known.items.index(i)] > 0)
            and (line is None or known.lines[known.items.index(i)] == line)]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows[:k]


def hand_made_model_manifest(version: str, items: int, users: int) -> dict[str, object]:
    """A valid model manifest (``ModelManifest``'s fields) for artifacts written by hand."""
    from tests.support.training import hand_made_manifest

    return {"model_version": version, "created_at": "2026-01-01T00:00:00+00:00", "recpipe_version": "test",
            "objective": "retrieval", "kind": "hand-made", "embedding_dim": 32, "score": "cosine", "towers": {},
            "features": {}, "counts": {"items": items, "users": users}, "training": {}, "metrics": {},
            "data": hand_made_manifest(Path("hand-made"), 0), "files": {}, "seconds": 0.0}
