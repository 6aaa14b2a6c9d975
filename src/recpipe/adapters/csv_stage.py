"""Arrow tables as CSV that both MySQL's LOAD DATA and PostgreSQL's COPY read exactly.

Every valid value is quoted and NULL is the bare word ``NULL``: MySQL (with ``ESCAPED BY ''``)
and PostgreSQL (``NULL 'NULL'``) both read an unquoted NULL as SQL NULL and a quoted "NULL" as
the string. Quotes inside values are doubled, which both understand.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv

_OPTIONS = pacsv.WriteOptions(include_header=False, null_string="NULL", quoting_style="all_valid",
                              batch_size=65_536)


def csv_bytes(data: pa.Table | pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(_printable(data), sink, write_options=_OPTIONS)
    return sink.getvalue()


def write_csv_file(data: pa.Table | pa.RecordBatch, path: str) -> None:
    pacsv.write_csv(_printable(data), path, write_options=_OPTIONS)


def _printable(data: pa.Table | pa.RecordBatch) -> pa.Table:
    """CSV is text: binary columns may only hold NULLs here (classicmodels' unused images)."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            if table.column(i).null_count != table.num_rows:
                raise ValueError(f"binary column {field.name!r} cannot be bulk-loaded as CSV")
            table = table.set_column(i, field.name, pa.nulls(table.num_rows, pa.string()))
    return table
