"""Where each artifact lives under the artifacts URL: written by training,
read by the vector loader and the inference service, which never import training."""

from __future__ import annotations

ITEM_EMBEDDINGS = "embeddings/item_embeddings.csv"
USER_EMBEDDINGS = "embeddings/user_embeddings.csv"
ITEM_ATTRIBUTES = "embeddings/item_attributes.csv"
STATE_DICT = "model/best_model.pth"
TOWERS = "model/towers.npz"
MANIFEST = "model/manifest.json"
LOSS_PLOT = "model/loss.png"
SCALERS = {"user": "scalers/user_features.json", "item": "scalers/item_features.json"}
EMBEDDING_DIM = 32  # the towers' output, and vector(32) in the vector tables


def artifact_path(name: str, path: str) -> str:
    """``path`` inside artifacts published as ``name`` ("" when they fill a whole bucket)."""
    return f"{name}/{path}" if name else path
