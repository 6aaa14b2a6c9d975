"""The encoders give the same inputs whether the columns are Arrow arrays (training) or plain
lists (serving), and serving never imports Arrow or SQLAlchemy (the Lambda zip leaves them out)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.inference.features import Encoder

WORDS = st.sampled_from(["Nantes", "Paris", "NYC", "Lyon", "", "Madrid", "naNtes"]) | st.text(max_size=5)


@settings(max_examples=200, deadline=None)
@given(fit=st.lists(WORDS, min_size=1, max_size=20), rows=st.lists(st.none() | WORDS, max_size=30),
       limits=st.lists(st.none() | st.floats(-1e6, 1e6), max_size=30))
def test_arrow_and_list_columns_encode_alike(fit: list[str], rows: list[str | None], limits: list[float | None]
                                             ) -> None:
    n = min(len(rows), len(limits))
    rows, limits = rows[:n], limits[:n]
    enc = Encoder.fit({"city": pa.array(fit), "creditLimit": pa.array([1.0, 3.0])}, ["city"], ["creditLimit"])
    as_lists = enc.encode({"city": rows, "creditLimit": limits})
    arrow = {"city": pa.array(rows, pa.string()), "creditLimit": pa.array(limits, pa.float64())}
    as_arrow = enc.encode(arrow)
    np.testing.assert_array_equal(as_lists, as_arrow)
    # kept compact (training), the rows read back are the same inputs, any rows in any order
    compact = enc.compact(arrow)
    assert compact.shape == as_arrow.shape and compact.positions.dtype == np.int32
    picked = np.random.default_rng(n).integers(0, max(n, 1), size=n)
    np.testing.assert_array_equal(compact[picked], as_arrow[picked])
    np.testing.assert_array_equal(np.asarray(compact), as_arrow)


def test_serving_imports_neither_arrow_nor_sqlalchemy() -> None:
    code = """
import sys
import recpipe.streaming.transform, recpipe.api.lambda_handler, recpipe.api.app, recpipe.api.service
import recpipe.adapters.s3_lake, recpipe.adapters.local_lake, recpipe.adapters.postgres_vectors
from recpipe.inference.features import Encoder
enc = Encoder.from_json({"categorical": {"city": ["Nantes"]}, "numeric": {"creditLimit": {"mean": 1, "std": 2}}})
assert enc.encode({"city": ["Nantes", None], "creditLimit": [3.0, None]}).tolist() == [[1.0, 1.0], [0.0, 0.0]]
app = recpipe.api.app.create_app
loaded = sorted(m for m in ("pyarrow", "sqlalchemy", "duckdb", "torch") if m in sys.modules)
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
