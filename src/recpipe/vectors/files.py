"""The artifacts' embedding CSVs, parsed and checked before anything touches the database.

``id,embedding`` with the vector as ``"[f1,...,f32]"`` (``recpipe.contracts.artifacts``). A file with the
wrong header, a malformed or non-finite vector, the wrong dimension, a missing or duplicate
id is refused with the file, the first offending id and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from recpipe.contracts.artifacts import EMBEDDING_DIM
from recpipe.errors import InputError

FIX = "re-run `recpipe train` to publish the artifacts again, or fix the file"


@dataclass
class Embeddings:
    ids: pa.Array  # string (items) or int32 (users)
    vectors: np.ndarray  # float32, n × dim

    def __len__(self) -> int:
        return len(self.ids)


def parse_embeddings(data: bytes, where: str, *, id_type: pa.DataType, dim: int = EMBEDDING_DIM) -> Embeddings:
    table = _read_csv(data, where, {"id": pa.string(), "embedding": pa.string()})
    if table.column_names != ["id", "embedding"]:
        raise InputError(f"{where} has columns {table.column_names}, expected id,embedding", hint=FIX)
    raw_ids, text = table["id"].combine_chunks(), table["embedding"].combine_chunks()
    ids = _ids(raw_ids, where, id_type)
    shaped = pc.and_(pc.starts_with(text, "["), pc.ends_with(text, "]"))
    bad = pc.invert(pc.fill_null(shaped, False))
    if pc.any(bad).as_py():
        _refuse(where, raw_ids, bad, "is not a vector like [0.1,...]")
    parts = pc.split_pattern(pc.utf8_slice_codeunits(text, 1, -1), ",")
    lengths = pc.list_value_length(parts)
    wrong = pc.not_equal(lengths, dim)
    if pc.any(wrong).as_py():
        first = pc.index(wrong, True).as_py()
        raise InputError(f"{where}: the embedding of id {raw_ids[first].as_py()} has {lengths[first].as_py()} "
                         f"dimensions, the vector database holds {dim}",
                         hint="train and load with the same model dimension (recpipe.contracts.artifacts.EMBEDDING_DIM)")
    flat = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    try:
        values = pc.cast(flat, pa.float32()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        ok = np.array([_is_float(v) for v in flat.to_pylist()])
        _refuse(where, raw_ids, pa.array(~ok.reshape(-1, dim).all(axis=1)), "has a value that is not a number")
    vectors = values.reshape(-1, dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        _refuse(where, raw_ids, pa.array(~finite), "has NaN or infinite values")
    return Embeddings(ids, np.ascontiguousarray(vectors, dtype=np.float32))


def parse_attributes(data: bytes, where: str) -> pa.Table:
    """``id,product_line,quantity_in_stock``; ids must be unique."""
    table = _read_csv(data, where, {"id": pa.string(), "product_line": pa.string(), "quantity_in_stock": pa.int32()})
    missing = {"id", "product_line", "quantity_in_stock"} - set(table.column_names)
    if missing:
        raise InputError(f"{where} lacks column(s) {', '.join(sorted(missing))}", hint=FIX)
    _ids(table["id"].combine_chunks(), where, pa.string())
    return table.select(["id", "product_line", "quantity_in_stock"])


def _read_csv(data: bytes, where: str, types: dict[str, pa.DataType]) -> pa.Table:
    try:
        return pcsv.read_csv(pa.BufferReader(data), convert_options=pcsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise InputError(f"{where} is not a readable CSV: {str(exc).splitlines()[0]}", hint=FIX) from exc


def _ids(raw: pa.Array, where: str, id_type: pa.DataType) -> pa.Array:
    empty = pc.equal(pc.utf8_length(raw), 0)
    if pc.any(empty).as_py():
        raise InputError(f"{where}: row {pc.index(empty, True).as_py() + 2} has an empty id", hint=FIX)
    try:
        ids = pc.cast(raw, id_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{where}: ids must be {id_type} ({str(exc).splitlines()[0]})", hint=FIX) from exc
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise InputError(f"{where}: id {dup} appears more than once", hint=FIX)
    return ids


def _refuse(where: str, ids: pa.Array, mask: Any, problem: str) -> None:
    first = pc.index(mask, True).as_py()
    raise InputError(f"{where}: the embedding of id {ids[first].as_py()} (row {first + 2}) {problem}", hint=FIX)


def _is_float(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
