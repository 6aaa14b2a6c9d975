"""A small shop end to end for tests that need a served model: ETL, a trained model, and its
vectors in the embedded PostgreSQL + pgvector with the catalog and purchases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recpipe.adapters import open_artifacts, open_lake, open_source, open_vectors
from recpipe.config import load_settings
from recpipe.source.generate import ShopSpec
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.vectors.pipeline import run as load_vectors
from tests.support.training import etl_lake


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lake = etl_lake(root, ShopSpec(customers=300, products=60, seed=11))
        self.artifacts = root / "lake" / "ml-artifacts"
        self.vectors_url = f"pgserver://{root / 'pg'}"
        self.source = open_source(f"sqlite:///{root / 'source.db'}")
        self.db = open_vectors(self.vectors_url)
        self.version = self.train(seed=1)
        self.load()

    def train(self, seed: int) -> str:
        store, name = open_artifacts(str(self.artifacts))
        m = train(open_lake(str(self.lake)), store, name,
                  TrainOptions(fit=FitOptions(max_epochs=3, patience=1, seed=seed)))
        return m.model_version

    def load(self, *, force: bool = True) -> Any:
        """Load the latest trained model; served whatever the gate says unless ``force`` is off
        (a test stack serves what it trains)."""
        store, name = open_artifacts(str(self.artifacts))
        return load_vectors(self.db, store, name, source=self.source, force=force)

    def settings(self) -> Any:
        """The service reaches the database by its postgresql:// URL, as it would reach RDS: it
        cannot restart it, so an outage is an outage until the database is back."""
        return load_settings({"artifacts_url": str(self.artifacts), "vectors_url": self.db.conninfo(),
                              "lake_url": str(self.lake), "source_url": f"sqlite:///{self.root / 'source.db'}"},
                             environ={"RECPIPE_HOME": str(self.root / "home")})


@contextmanager
def running_stack(root: Path) -> Iterator[Stack]:
    """A Stack under ``root``; its embedded PostgreSQL is stopped afterwards."""
    s = Stack(root)
    try:
        yield s
    finally:
        s.db.stop()


def served_encoder(stack: Stack) -> Any:
    """The session encoder of the model the stack serves (trained with it, or the default)."""
    from recpipe.inference.model import Model

    store, name = open_artifacts(str(stack.artifacts))
    return Model.load(store, name).session
