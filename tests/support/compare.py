"""Reading a source database back into plain, comparable rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine, select

from recpipe.contracts.source import table


def normalise(value: Any) -> Any:
    """One representation per value across SQLite, MySQL and PostgreSQL drivers."""
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        return round(float(value), 2)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def rows_from_db(url: str, name: str) -> list[tuple[Any, ...]]:
    t = table(name)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pk = list(t.primary_key.columns)
            rows = conn.execute(select(*t.columns).order_by(*pk)).fetchall()
    finally:
        engine.dispose()
    return [tuple(normalise(v) for v in row) for row in rows]


def rows_from_arrow(data: pa.Table, name: str) -> list[tuple[Any, ...]]:
    pk = [c.name for c in table(name).primary_key.columns]
    data = data.sort_by([(c, "ascending") for c in pk])
    return [tuple(normalise(v) for v in row.values()) for row in data.to_pylist()]
