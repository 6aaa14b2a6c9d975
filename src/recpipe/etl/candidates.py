"""A batch of sink objects as one Arrow table of candidate rows (``etl.lines``): built an object
at a time, so that only one object's rows are ever Python objects, and once the batch is large
enough by one process per core (the parse is Python: one core reads about 25,000 lines/s)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from recpipe.contracts.activity import arrow_type
from recpipe.etl.lines import CANDIDATE_TYPES, rows_of_object


def candidate_schema() -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(name, arrow_type(t)) for name, t in CANDIDATE_TYPES.items()])


def candidates_table(objects: Iterable[tuple[str, bytes]]) -> Any:
    """``rows_of_object`` over ``objects`` as one Arrow table (the DuckDB engine's, and each
    Spark worker's for its share), built an object at a time: only one object's rows are ever
    Python objects."""
    import pyarrow as pa

    schema = candidate_schema()
    parts = []
    for key, data in objects:
        rows = list(rows_of_object(key, data))
        if rows:
            columns: list[Any] = list(zip(*rows, strict=True))
            parts.append(pa.table([pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
                                  schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


PARALLEL_FROM_BYTES = 20_000_000  # below this, starting processes costs more than parsing in this one


def parse_in_processes(objects: Iterable[tuple[str, bytes]], processes: int | None = None) -> Any:
    """``candidates_table`` of ``objects``, the lines parsed by one process per core once the
    batch is large enough (the parse is Python: one core reads about 25,000 lines/s). Objects
    are read here, a few at a time ahead of the workers, and come back as Arrow in their order."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    import pyarrow as pa

    n = max(1, processes or os.cpu_count() or 1)
    pending: list[tuple[str, bytes]] = []
    size = 0
    stream = iter(objects)
    for key, data in stream:  # small batches: no processes at all
        pending.append((key, data))
        size += len(data)
        if size >= PARALLEL_FROM_BYTES:
            break
    else:
        return candidates_table(pending)
    if n == 1:
        return candidates_table([*pending, *stream])
    context = multiprocessing.get_context("spawn")  # never fork a process that has DuckDB threads
    parts: list[Any] = []
    with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
        flight: deque[Future[bytes]] = deque()
        for item in _chain(pending, stream):
            flight.append(pool.submit(_parse_ipc, item))
            while len(flight) >= 2 * n:  # bounded: at most 2 objects per worker held here
                parts.append(_from_ipc(flight.popleft().result()))
        parts += [_from_ipc(f.result()) for f in flight]
    return pa.concat_tables(parts) if parts else candidate_schema().empty_table()


def _chain(first: list[tuple[str, bytes]], rest: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    yield from first
    first.clear()
    yield from rest


def _parse_ipc(item: tuple[str, bytes]) -> bytes:
    """A worker's share: one object's candidates as an Arrow IPC stream."""
    import pyarrow as pa

    table = candidates_table([item])
    out = pa.BufferOutputStream()
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)
    return bytes(out.getvalue().to_pybytes())


def _from_ipc(data: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()
