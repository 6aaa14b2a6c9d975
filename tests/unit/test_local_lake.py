"""The local lake lists files as the S3 lake does: relative paths with ``/``, sorted, hidden
files left out, nothing for a folder that is not there."""

from __future__ import annotations

from pathlib import Path

from recpipe.adapters.local_lake import LocalLake


def test_list_files_names_every_file_below_a_prefix_sorted(tmp_path: Path) -> None:
    for rel in ("d/customerNumber=10/part-0.parquet", "d/customerNumber=9/part-0.parquet", "d/_manifest.json",
                "d/.part-1.parquet.tmp", "d/customerNumber=9/.hidden", "other/x.json", "top.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "d" / "empty").mkdir()
    lake = LocalLake(str(tmp_path))
    assert lake.list_files("d") == ["d/_manifest.json", "d/customerNumber=10/part-0.parquet",
                                    "d/customerNumber=9/part-0.parquet"]
    assert lake.list_files() == [*lake.list_files("d"), "other/x.json", "top.json"]
    assert lake.list_files("nowhere") == [] and lake.list_files("d/empty") == []


def test_write_file_copies_a_file_in_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(bytes(range(256)) * 5000)  # larger than one copy buffer
    lake = LocalLake(str(tmp_path / "lake"))
    lake.write_file("models/v1/user_embeddings.csv", source)
    lake.write_file("models/v1/user_embeddings.csv", source)  # again: replaced, not appended
    assert lake.read_bytes("models/v1/user_embeddings.csv") == source.read_bytes()
    assert [p.name for p in (tmp_path / "lake" / "models" / "v1").iterdir()] == ["user_embeddings.csv"]
