"""What training leaves behind, laid out as the seed's ``ml-artifacts`` bucket (``recpipe.contracts.artifacts``).

    embeddings/item_embeddings.csv   id,embedding   (productCode, "[f1,...,f32]")
    embeddings/user_embeddings.csv   id,embedding   (customerNumber)
    embeddings/item_attributes.csv   id,product_line,quantity_in_stock (for filters in pgvector)
    model/best_model.pth             PyTorch state_dict
    model/towers.npz                 the numpy form of the towers (no pickle)
    model/manifest.json              version, dimensions, vocabularies, data manifest, metrics
    model/loss.png                   the training curve (loss per epoch; retrieval: validation Recall@10)
    scalers/user_features.json       encoder + scaler parameters of each tower (JSON)
    scalers/item_features.json

All of it is written into a staging directory and published in one step.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from recpipe.contracts.artifacts import (  # the layout is shared with serving
    ITEM_ATTRIBUTES,
    ITEM_EMBEDDINGS,
    LOSS_PLOT,
    MANIFEST,
    SCALERS,
    STATE_DICT,
    TOWERS,
    USER_EMBEDDINGS,
)
from recpipe.inference.features import Encoder
from recpipe.inference.towers import Towers

__all__ = ["ITEM_ATTRIBUTES", "ITEM_EMBEDDINGS", "LOSS_PLOT", "MANIFEST", "SCALERS", "STATE_DICT", "TOWERS",
           "USER_EMBEDDINGS"]


EMBEDDING_ROWS = 50_000  # vectors formatted as text at once


def format_vectors(vectors: np.ndarray) -> pa.Array:
    """``[f1,...,fn]`` per row: the shortest text that reads back as the same float32
    (also pgvector's text form)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    flat = pa.array(vectors.ravel()).cast(pa.string())
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)), flat)
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")


def write_embeddings(path: Path, ids: Sequence[Any] | pa.Array,
                     vectors: np.ndarray | Callable[[int, int], np.ndarray]) -> None:
    """The seed's CSV: header ``id,embedding``, the vector quoted (it holds commas). Written
    ``EMBEDDING_ROWS`` at a time: 650,000 customers' vectors as text at once took 0.78 GB.
    ``vectors`` may be a function making the vectors of ids ``lo`` to ``hi - 1``, called a block
    at a time: every customer's vector at once is 83 MB more at 650,000 customers."""
    ids = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids)
    of = vectors if callable(vectors) else (lambda lo, hi: vectors[lo:hi])
    blocks = (pa.table({"id": ids.slice(lo, EMBEDDING_ROWS),
                        "embedding": format_vectors(of(lo, min(lo + EMBEDDING_ROWS, len(ids))))})
              for lo in range(0, len(ids), EMBEDDING_ROWS))
    _write_csv(path, ["id", "embedding"], blocks)


def write_item_attributes(path: Path, items: pa.Table) -> None:
    """What filters need beside each item's embedding, as of the training data."""
    table = pa.table({"id": items["productCode"], "product_line": items["productLine"],
                      "quantity_in_stock": items["quantityInStock"]})
    _write_csv(path, table.column_names, [table])


def _write_csv(path: Path, names: list[str], tables: Iterable[pa.Table]) -> None:
    """A bare header line (Arrow would quote the names), then the rows, quoted where needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write((",".join(names) + "\n").encode())
        for table in tables:
            pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False, quoting_style="needed"))


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def write_encoders(root: Path, encoders: dict[str, Encoder]) -> None:
    for tower, encoder in encoders.items():
        write_json(root / SCALERS[tower], encoder.to_json())


def write_towers(root: Path, towers: Towers) -> None:
    (root / TOWERS).parent.mkdir(parents=True, exist_ok=True)
    with (root / TOWERS).open("wb") as f:
        towers.save(f)


def write_state_dict(root: Path, model: Any) -> None:
    """torch's zip writer turns a failed write (a full disk) into a RuntimeError without its
    cause; the OSError underneath is raised instead, so the disk is named as full."""
    from recpipe.training.model import torch

    (root / STATE_DICT).parent.mkdir(parents=True, exist_ok=True)
    with (root / STATE_DICT).open("wb") as f:
        out = _Recorded(f)
        try:
            torch.save(model.state_dict(), out)  # type: ignore[arg-type]  # a binary file, as torch takes
        except RuntimeError as exc:
            if out.error is not None:
                raise out.error from exc
            raise


class _Recorded(io.RawIOBase):
    """A writable file that keeps the OSError a write raised."""

    def __init__(self, f: Any) -> None:
        super().__init__()
        self.f = f
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        try:
            return int(self.f.write(b))
        except OSError as exc:
            self.error = exc
            raise


def plot_loss(path: Path, history: Sequence[dict[str, Any]], best: int, title: str) -> None:
    """The training curve, the best epoch marked: RMSE on the 1–5 scale for the rating
    objective; for retrieval the softmax loss and, on a second axis, the validation Recall@10."""
    from recpipe.errors import require

    matplotlib = require("matplotlib", "train", "The loss plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(1, len(history) + 1)
    retrieval = any(e.get("val_recall") is not None for e in history)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        values = [np.nan if e[key] is None else e[key] if retrieval else 2 * np.sqrt(e[key]) for e in history]
        ax.plot(x, values, marker="o", markersize=3, label=f"{label} loss" if retrieval else label)
    phases = [e["phase"] for e in history]
    for k in range(1, len(phases)):
        if phases[k] != phases[k - 1]:
            ax.axvline(k + 0.5, color="grey", linestyle=":", label=f"{phases[k]} phase starts")
    ax.axvline(best + 1, color="green", linestyle="--", label=f"best epoch ({best + 1})")
    ylabel = "in-batch softmax loss (logQ-corrected)" if retrieval else "RMSE, 1–5 scale (2·√MSE)"
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if retrieval:
        right = ax.twinx()
        right.plot(x, [np.nan if e.get("val_recall") is None else e["val_recall"] for e in history],
                   color="purple", marker="s", markersize=3, label="validation Recall@10")
        right.set_ylabel("validation Recall@10")
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="center right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
