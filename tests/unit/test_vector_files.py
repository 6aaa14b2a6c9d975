"""The embedding CSVs are checked before any database work: each problem named, with the id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recpipe.errors import InputError
from recpipe.training import artifacts
from recpipe.training.artifacts import format_vectors
from recpipe.vectors.files import parse_attributes, parse_embeddings


def _csv(rows: list[str], header: str = "id,embedding") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _vec(values: list[float]) -> str:
    return '"[' + ",".join(str(v) for v in values) + ']"'


GOOD = [f"S{k},{_vec([0.5] * 32)}" for k in range(3)]


def test_the_seeds_format_round_trips_exactly() -> None:
    v = np.random.default_rng(0).normal(size=(50, 32)).astype(np.float32)
    text = pa.array(format_vectors(v)).to_pylist()
    data = _csv([f'"S{k}","{t}"' for k, t in enumerate(text)])
    got = parse_embeddings(data, "items.csv", id_type=pa.string())
    assert np.array_equal(got.vectors, v) and got.ids.to_pylist() == [f"S{k}" for k in range(50)]
    users = parse_embeddings(_csv([f"{103 + k},{_vec([1.0] * 32)}" for k in range(3)]), "u.csv", id_type=pa.int32())
    assert users.ids.type == pa.int32() and users.ids.to_pylist() == [103, 104, 105]
    spaced = parse_embeddings(_csv(['A,"[' + ", ".join(["1.5"] * 32) + ']"']), "s.csv", id_type=pa.string())
    assert spaced.vectors[0, 0] == 1.5  # "[1.5, 1.5, ...]" (pandas' list repr) reads too


@pytest.mark.parametrize(("rows", "needle"), [
    ([*GOOD, f"S9,{_vec([0.5] * 31)}"], "id S9 has 31 dimensions, the vector database holds 32"),
    ([*GOOD, "S9,0.5;0.5"], "id S9 (row 5) is not a vector"),
    ([*GOOD, f"S9,{_vec([0.5] * 31 + ['x'])}"], "id S9 (row 5) has a value that is not a number"),
    ([*GOOD, f"S9,{_vec([0.5] * 31 + ['nan'])}"], "id S9 (row 5) has NaN or infinite values"),
    ([*GOOD, f"S1,{_vec([0.1] * 32)}"], "id S1 appears more than once"),
    ([*GOOD, f",{_vec([0.1] * 32)}"], "row 5 has an empty id"),
])
def test_bad_embeddings_are_named(rows: list[str], needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_embeddings(_csv(rows), "items.csv", id_type=pa.string())
    assert needle in str(err.value) and "items.csv" in str(err.value) and err.value.hint


def test_wrong_header_and_non_integer_user_ids() -> None:
    with pytest.raises(InputError, match="expected id,embedding"):
        parse_embeddings(_csv(GOOD, header="key,vector"), "items.csv", id_type=pa.string())
    with pytest.raises(InputError, match="ids must be int32"):
        parse_embeddings(_csv(GOOD), "users.csv", id_type=pa.int32())


def test_attributes() -> None:
    table = parse_attributes(_csv(['"S1","Planes",3', '"S2","Ships",0'], header="id,product_line,quantity_in_stock"),
                             "attrs.csv")
    assert table.to_pylist()[1] == {"id": "S2", "product_line": "Ships", "quantity_in_stock": 0}
    with pytest.raises(InputError, match="lacks column"):
        parse_attributes(_csv(['"S1","Planes"'], header="id,product_line"), "attrs.csv")


def test_vectors_made_a_block_at_a_time_write_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "EMBEDDING_ROWS", 4)  # 10 ids: blocks of 4, 4 and 2
    v = np.random.default_rng(1).normal(size=(10, 32)).astype(np.float32)
    asked: list[tuple[int, int]] = []

    def block(lo: int, hi: int) -> np.ndarray:
        asked.append((lo, hi))
        return v[lo:hi]

    artifacts.write_embeddings(tmp_path / "whole.csv", list(range(10)), v)
    artifacts.write_embeddings(tmp_path / "blocks.csv", list(range(10)), block)
    assert asked == [(0, 4), (4, 8), (8, 10)]
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    got = parse_embeddings((tmp_path / "blocks.csv").read_bytes(), "blocks.csv", id_type=pa.int32())
    assert np.array_equal(got.vectors, v) and got.ids.to_pylist() == list(range(10))
