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
    joined = joined.join(first_orders(tables), ["customerNumber", "productCode"]) if "orders" in tables else \
        joined.append_column("orderDate", pa.nulls(joined.num_rows, pa.date32())).append_column(
            "orderLine", pa.nulls(joined.num_rows, pa.int64()))
    joined = joined.select(TRAINING_SCHEMA.names)
    joined = pa.table({f.name: pc.cast(joined[f.name], f.type) for f in TRAINING_SCHEMA})
    return joined.sort_by([("customerNumber", "ascending"), ("productCode", "ascending")])


def first_orders(tables: dict[str, pa.Table]) -> pa.Table:
    """Per (customer, product): the first order line by date, order number and line number."""
    lines = tables["orderdetails"].join(tables["orders"].select(["orderNumber", "orderDate", "customerNumber"]),
                                        "orderNumber")
    rows = sorted(lines.select(["customerNumber", "productCode", "orderDate", "orderNumber",
                                "orderLineNumber"]).to_pylist(),
                  key=lambda r: (r["customerNumber"], r["productCode"], r["orderDate"], r["orderNumber"],
                                 r["orderLineNumber"]), reverse=True)
    first = {(r["customerNumber"], r["productCode"]): r for r in rows}  # the smallest wins: written last
    return pa.table({"customerNumber": pa.array([k[0] for k in first], pa.int32()),
                     "productCode": pa.array([k[1] for k in first], pa.string()),
                     "orderDate": pa.array([r["orderDate"] for r in first.values()], pa.date32()),
                     "orderLine": pa.array([r["orderNumber"] * 100000 + r["orderLineNumber"] for r in first.values()],
                                           pa.int64())})


def read_training(location: str | Path) -> pa.Table:
    """The published dataset as any Parquet reader sees it (hive partitioning)."""
    part = ds.partitioning(pa.schema([("customerNumber", pa.int32())]), flavor="hive")
    data = ds.dataset(str(location), format="parquet", partitioning=part).to_table()
    data = data.select(TRAINING_SCHEMA.names)
    return data.sort_by([("customerNumber", "ascending"), ("productCode", "ascending")])
