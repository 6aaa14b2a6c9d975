"""The compact layout's writer: whole keys per file, every row once, in order, files cut soon
after the size asked for (hypothesis over batch sizes, key runs and file sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.etl.partition_writer import write_compact


@settings(max_examples=60, deadline=None)
@given(runs=st.lists(st.integers(1, 40), max_size=40), batch=st.integers(1, 64), rows=st.integers(1, 100))
def test_compact_files_hold_whole_keys_in_order(tmp_path_factory, runs: list[int], batch: int, rows: int) -> None:  # type: ignore[no-untyped-def]
    out: Path = tmp_path_factory.mktemp("compact")
    keys = np.repeat(np.arange(len(runs)), runs).astype(np.int32)
    table = pa.table({"k": keys, "v": np.arange(len(keys))})
    written = write_compact(iter(table.to_batches(max_chunksize=batch)), out, "k", rows)
    parts = [pq.read_table(out / w.path) for w in written]
    assert [w.rows for w in written] == [p.num_rows for p in parts]
    got = pa.concat_tables(parts) if parts else table.slice(0, 0)
    assert got.equals(table)  # every row once, in order
    owners = [set(p["k"].to_pylist()) for p in parts]
    assert sum(map(len, owners)) == len(set().union(*owners)) if owners else True  # a key in one file
    for p in parts[:-1]:
        assert p.num_rows >= rows  # cut only once full
    for p in parts:
        k = p["k"].to_numpy()
        assert (k != k[-1]).sum() < rows  # ... at the first key change after that
