"""Reading a lake dataset of very many files in groups of ``FILES_AT_ONCE`` (``scan``).

Arrow keeps each file's metadata for as long as the dataset that read it lives (about 34 KB a
file), and discovering a folder makes an object per file (about 1 KB): a dataset of the 600,000
files of a 10M-rating shop in the one-file-per-customer layout held 2 GB before a row was read.
``scan`` lists the files once, gives each group a dataset of its own, and hands its rows over
at most ``ROWS_AT_ONCE`` at a time (a compact dataset's 2,000 files are the whole dataset).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from recpipe.adapters.base import Lake
from recpipe.progress import SILENT, Progress

FILES_AT_ONCE = 2_000
ROWS_AT_ONCE = 500_000
BATCH_ROWS = 128 * 1024


class FileNames(Sequence[str]):
    """File names held as one Arrow string array: a byte a character, where a list of Python
    strings costs about 60 bytes more a name (36 MB at the 597,466 files of a 10M-rating shop,
    held for all of reading). A slice is a list of strings."""

    def __init__(self, names: list[str]) -> None:
        import pyarrow as pa

        self._names = pa.array(names, pa.string())

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, k: int) -> str: ...
    @overload
    def __getitem__(self, k: slice) -> list[str]: ...
    def __getitem__(self, k: int | slice) -> str | list[str]:
        if isinstance(k, slice):
            return [str(n) for n in self._names[k].to_pylist()]
        return str(self._names[k].as_py())


def data_files(lake: Lake, name: str) -> FileNames:
    """The Parquet files of dataset ``name`` (not ``_``/``.`` files), as ``lake.list_files`` names them."""
    return FileNames([f for f in lake.list_files(name)
                      if f.endswith(".parquet") and not f.rsplit("/", 1)[-1].startswith(("_", "."))])


def scan(lake: Lake, name: str, columns: list[str], files: Sequence[str], *, partitioning: Any = None,
         schema: Any = None, progress: Progress = SILENT, task: str = "reading files") -> Iterator[Any]:
    """``columns`` of ``files`` (of dataset ``name``, as ``data_files`` names them) as Arrow tables of at
    most about ``ROWS_AT_ONCE`` rows (a file's rows may come in two tables)."""
    import pyarrow as pa

    progress.start(task, len(files))
    for lo in range(0, len(files), FILES_AT_ONCE):
        group = list(files[lo:lo + FILES_AT_ONCE])
        dataset = lake.dataset(name, group, partitioning=partitioning, schema=schema)
        pending: list[Any] = []
        held = 0
        for batch in dataset.to_batches(columns=columns, batch_size=BATCH_ROWS, batch_readahead=2,
                                        fragment_readahead=4):
            pending.append(batch)
            held += batch.num_rows
            if held >= ROWS_AT_ONCE:
                yield pa.Table.from_batches(pending)
                pending, held = [], 0
        if pending:
            yield pa.Table.from_batches(pending)
        progress.advance(task, len(group))
