"""Streaming query results into Arrow with ConnectorX (Rust, no Python row objects).

Shared by the source adapters: each passes its own connection URL. Results arrive as a
``pyarrow.RecordBatchReader`` of ``batch_rows`` rows at a time, so memory stays bounded by
the batch, not the table.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from recpipe.errors import ServiceError


def read_arrow(url: str, query: str, *, shown_url: str, schema: pa.Schema | None = None,
               batch_rows: int = 100_000) -> pa.RecordBatchReader:
    """Batches of ``schema`` when given (e.g. DECIMAL arrives as float64), else as read."""
    import connectorx as cx  # a base dependency

    try:
        reader = cx.read_sql(url, query, return_type="arrow_stream", batch_size=batch_rows)
    except Exception as exc:  # ConnectorX raises RuntimeError/ValueError with the driver's text
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(f"reading from {shown_url} failed: {said}",
                           hint="check that the server is up and the query's tables exist") from exc
    if schema is None:
        return reader
    return pa.RecordBatchReader.from_batches(schema, (_cast(b, schema) for b in reader))


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast to ``schema``; DECIMAL goes to float through its text, which rounds correctly
    (a direct decimal128(38,10) -> float64 cast turns 59.40 into 59.400000000000006)."""
    columns = []
    for column, field in zip(batch.columns, schema, strict=True):
        if pa.types.is_decimal(column.type) and pa.types.is_floating(field.type):
            column = pc.cast(pc.cast(column, pa.string()), field.type)
        columns.append(pc.cast(column, field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
