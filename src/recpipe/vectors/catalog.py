"""The shop's catalog and purchase history, read from the source database for serving:
products that have no embedding yet (added after training) and what each customer has
already bought."""

from __future__ import annotations

import pyarrow as pa

from recpipe.adapters.base import SourceDatabase
from recpipe.etl.extract import check_source, stream

PURCHASES_SCHEMA = pa.schema([("customerNumber", pa.int32()), ("productCode", pa.string())])


def read_catalog(db: SourceDatabase) -> pa.Table:
    """Every product as ``id, product_line, quantity_in_stock`` (the item attributes' columns)."""
    check_source(db)
    return (stream(db, "products").read_all().select(["productCode", "productLine", "quantityInStock"])
            .rename_columns(["id", "product_line", "quantity_in_stock"]))


def read_purchases(db: SourceDatabase) -> pa.Table:
    """Distinct (customerNumber, productCode) pairs ever ordered."""
    q = "`" if db.dialect == "mysql" else '"'
    sql = (f"SELECT DISTINCT o.{q}customerNumber{q} AS {q}customerNumber{q}, d.{q}productCode{q} AS {q}productCode{q} "
           f"FROM {q}orders{q} o JOIN {q}orderdetails{q} d ON d.{q}orderNumber{q} = o.{q}orderNumber{q}")
    return db.read_arrow(sql, schema=PURCHASES_SCHEMA).read_all()
