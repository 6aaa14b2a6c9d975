"""The source stage's entry point: a synthetic shop into a source database.

``run`` generates the shop (``generate``), writes it atomically (``load.write_shop``) and
records the generator's parameters in a sidecar file beside it. Real data comes in through
``dump.load_dump`` and ``ratings.add_ratings`` instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recpipe.adapters.base import SourceDatabase, refuse_clash
from recpipe.contracts.source import TABLE_ORDER
from recpipe.progress import SILENT, Progress
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop, write_sidecar


@dataclass(frozen=True)
class ShopResult:
    source: str  # the database's URL, password masked
    counts: dict[str, int]  # rows per table
    rmse_floor: dict[str, float]  # the best RMSE a model can reach on the generated ratings
    generator_params: str  # the sidecar file with the generator's parameters

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ShopResult:
        return cls(**doc)


def run(db: SourceDatabase, spec: ShopSpec, *, sidecar: Path, replace: bool = False,
        progress: Progress = SILENT) -> ShopResult:
    """Generate the shop ``spec`` describes into ``db`` (all or nothing) and its sidecar."""
    spec.check()
    refuse_clash(db.url, TABLE_ORDER, db.existing_tables(), replace)  # fail before generating
    progress.status(f"generating a shop of {spec.customers:,} customers and {spec.products:,} products")
    shop = generate_shop(spec)
    for name, rows in shop.counts().items():
        progress.start(name, rows)
    progress.status(f"writing it to {db.url}")
    counts = write_shop(db, shop, replace=replace, progress=progress)
    shop.params["source"] = db.url
    write_sidecar(sidecar, shop.params)
    return ShopResult(source=db.url, counts=counts, rmse_floor=shop.params["rmse_floor"],
                      generator_params=str(sidecar))
