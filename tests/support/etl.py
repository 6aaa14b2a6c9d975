"""Helpers for ETL tests: the expected dataset computed independently, and reading it back."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from recpipe.contracts.dataset import TRAINING_SCHEMA


def expected_training(tables: dict[str, pa.Table]) -> pa.Table:
    """ratings ⋈ products ⋈ customers with pyarrow, as the contract describes it."""
    ratings = tables["ratings"]
    customers = tables["customers"].select(["customerNumber", "city", "state", "postalCode", "country",
                                            "creditLimit"])
    products = tables["products"].select(["productCode", "productLine", "productScale",
                                          "quantityInStock", "buyPrice", "MSRP"])
    joined = ratings.join(customers, "customerNumber").join(products, "productCode")
    joined = joined.select(TRAINING_SCHEMA.names)
    joined = pa.table({f.name: pc.cast(joined[f.name], f.type) for f in TRAINING_SCHEMA})
    return joined.sort_by([("customerNumber", "ascending"), ("productCode", "ascending")])


def read_training(location: str | Path) -> pa.Table:
    """The published dataset as any Parquet reader sees it (hive partitioning)."""
    part = ds.partitioning(pa.schema([("customerNumber", pa.int32())]), flavor="hive")
    data = ds.dataset(str(location), format="parquet", partitioning=part).to_table()
    data = data.select(TRAINING_SCHEMA.names)
    return data.sort_by([("customerNumber", "ascending"), ("productCode", "ascending")])
