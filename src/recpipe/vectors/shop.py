"""Look-ups the page makes in the vector database: customers and products by search or id,
what a customer bought, and a 2-D map of the item embeddings. Each takes a connection and is
run through ``VectorQueries.read`` (the service's connection per thread stays inside
``recpipe.vectors``); tables come from ``recpipe.contracts.vectors``. The catalog and customer
tables exist once ``vectors load`` has read them from the source."""

from __future__ import annotations

from typing import Any

import numpy as np

from recpipe.contracts import vectors as schema
from recpipe.vectors.connect import has_table

PRODUCT = "c.id, c.name, c.product_line, c.scale, c.vendor, c.msrp, c.quantity_in_stock"
PRODUCT_FIELDS = ("id", "name", "product_line", "scale", "vendor", "msrp", "quantity_in_stock", "embedded")
CUSTOMER_FIELDS = ("id", "name", "city", "country", "credit_limit", "stored_embedding")


def _like(text: str) -> str:
    """``text`` as a case-insensitive substring pattern (its own % and _ taken literally)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_customers(conn: Any, q: str, limit: int) -> list[dict[str, Any]]:
    """Customers whose number starts with ``q``, or whose name or city contains it."""
    if not has_table(conn, schema.CUSTOMERS):
        return []
    q = q.strip()
    rows = conn.execute(
        f"SELECT c.id, c.name, c.city, c.country, c.credit_limit, u.id IS NOT NULL FROM {schema.CUSTOMERS} c "
        f"LEFT JOIN {schema.USERS} u ON u.id = c.id "
        "WHERE c.id::text LIKE %(prefix)s OR c.name ILIKE %(like)s OR c.city ILIKE %(like)s "
        "ORDER BY (c.id::text = %(q)s) DESC, c.id LIMIT %(limit)s",
        {"prefix": _like(q)[1:], "like": _like(q), "q": q, "limit": limit}).fetchall()
    return [dict(zip(CUSTOMER_FIELDS, row, strict=True)) for row in rows]


def customer(conn: Any, number: int) -> dict[str, Any] | None:
    """One customer and what they bought (None: not in the loaded customers)."""
    if not has_table(conn, schema.CUSTOMERS):
        return None
    row = conn.execute(f"SELECT c.id, c.name, c.city, c.country, c.credit_limit, u.id IS NOT NULL "
                       f"FROM {schema.CUSTOMERS} c LEFT JOIN {schema.USERS} u ON u.id = c.id WHERE c.id = %s",
                       (number,)).fetchone()
    if row is None:
        return None
    bought = conn.execute(f"SELECT {PRODUCT}, i.id IS NOT NULL, p.rating FROM {schema.PURCHASES} p "
                          f"JOIN {schema.CATALOG} c ON c.id = p.product_code "
                          f"LEFT JOIN {schema.ITEMS} i ON i.id = c.id WHERE p.customer_number = %s ORDER BY c.id",
                          (number,)).fetchall()
    return {"customer": dict(zip(CUSTOMER_FIELDS, row, strict=True)),
            "bought": [dict(zip((*PRODUCT_FIELDS, "rating"), r, strict=True)) for r in bought]}


def find_products(conn: Any, q: str | None, ids: list[str], limit: int) -> list[dict[str, Any]]:
    """Products by code (``ids``, in that order) or whose code, name or line contains ``q``."""
    if not has_table(conn, schema.CATALOG):
        return []
    select = f"SELECT {PRODUCT}, i.id IS NOT NULL FROM {schema.CATALOG} c LEFT JOIN {schema.ITEMS} i ON i.id = c.id "
    if ids:
        rows = conn.execute(select + "WHERE c.id = ANY(%s)", (ids,)).fetchall()
        found = {r[0]: r for r in rows}
        rows = [found[i] for i in dict.fromkeys(ids) if i in found]
    else:
        like = _like((q or "").strip())
        rows = conn.execute(select + "WHERE c.id ILIKE %(like)s OR c.name ILIKE %(like)s OR c.product_line ILIKE "
                            "%(like)s ORDER BY c.id LIMIT %(limit)s", {"like": like, "limit": limit}).fetchall()
    return [dict(zip(PRODUCT_FIELDS, r, strict=True)) for r in rows]


def item_map(conn: Any, limit: int) -> dict[str, Any]:
    """The item embeddings projected on their two main axes (PCA), with product lines."""
    if not has_table(conn, schema.ITEMS):
        return {"items": 0, "variance": [], "points": []}
    rows = conn.execute(f"SELECT id, product_line, embedding::real[] FROM {schema.ITEMS} ORDER BY id LIMIT %s",
                        (limit,)).fetchall()
    if len(rows) < 3:
        return {"items": len(rows), "variance": [], "points": []}
    vectors = np.asarray([r[2] for r in rows], dtype=np.float64)
    centred = vectors - vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ axes[:2].T
    share = (singular**2 / float((singular**2).sum())).tolist()
    return {"items": len(rows), "variance": [round(s, 4) for s in share[:2]],
            "points": [{"id": r[0], "product_line": r[1], "x": round(float(x), 4), "y": round(float(y), 4)}
                       for r, (x, y) in zip(rows, xy, strict=True)]}
