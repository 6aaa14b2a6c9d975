"""Deriving ``ratings`` for a classicmodels database that has none (a real shop's dump).

One rating per distinct purchased (customer, product) pair, as in the reference data. The
rating leans on how much of the product the customer bought compared with other buyers of
it, plus a per-customer leniency and noise; it is seeded, so the same database and seed
always give the same ratings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import func, select

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts import source as schema
from recpipe.errors import InputError


def purchased_pairs(db: SourceDatabase) -> pa.Table:
    needed = {"orders", "orderdetails", "customers", "products"}
    missing = sorted(needed - {t.lower() for t in db.existing_tables()})
    if missing:
        raise InputError(f"source database {db.url} has no table(s) {', '.join(missing)}",
                         hint="load classicmodels first: `recpipe source load-dump FILE.sql`")
    o, d = schema.orders.c, schema.orderdetails.c
    query = (select(o.customerNumber, d.productCode, func.sum(d.quantityOrdered))
             .select_from(schema.orders.join(schema.orderdetails, o.orderNumber == d.orderNumber))
             .group_by(o.customerNumber, d.productCode)
             .order_by(o.customerNumber, d.productCode))
    with db.engine().connect() as conn:
        rows = conn.execute(query).fetchall()
    db.close()
    return pa.table({
        "customerNumber": pa.array([r[0] for r in rows], pa.int32()),
        "productCode": pa.array([r[1] for r in rows], pa.string()),
        "quantity": pa.array([float(r[2]) for r in rows], pa.float64()),
    })


def derive_ratings(pairs: pa.Table, seed: int) -> pa.Table:
    """Pure: one 1–5 rating per pair, from relative quantity, customer leniency and noise."""
    rng = np.random.default_rng(seed)
    n = pairs.num_rows
    if n == 0:
        return pa.table({"customerNumber": pa.array([], pa.int32()),
                         "productCode": pa.array([], pa.string()),
                         "productRating": pa.array([], pa.int32())})
    quantity = pairs["quantity"].to_numpy()
    _, product = np.unique(pairs["productCode"].to_numpy(zero_copy_only=False), return_inverse=True)
    customers, customer = np.unique(pairs["customerNumber"].to_numpy(), return_inverse=True)
    mean = np.bincount(product, weights=quantity) / np.bincount(product)
    sq = np.bincount(product, weights=quantity**2) / np.bincount(product)
    sd = np.sqrt(np.maximum(sq - mean**2, 0)) + 1e-9
    relative = np.clip((quantity - mean[product]) / sd[product], -3, 3)
    leniency = rng.normal(0, 0.5, len(customers))[customer]
    z = 3.6 + 0.6 * relative + leniency + rng.normal(0, 0.6, n)
    return pa.table({
        "customerNumber": pairs["customerNumber"],
        "productCode": pairs["productCode"],
        "productRating": pa.array(np.clip(np.rint(z), 1, 5).astype(np.int32)),
    })


def add_ratings(db: SourceDatabase, *, seed: int = 42, replace: bool = False) -> int:
    """Create and fill ``ratings`` in an existing classicmodels database; all or nothing."""
    ratings = derive_ratings(purchased_pairs(db), seed)
    with db.build(replace=replace, fresh=False, tables=["ratings"]) as loader:
        loader.create_tables(["ratings"])
        loader.bulk_insert("ratings", ratings)
    return ratings.num_rows
