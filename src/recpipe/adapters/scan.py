"""Reading a lake dataset of very many files in groups of ``FILES_AT_ONCE`` (``scan``).

Arrow keeps each file's metadata for as long as the dataset that read it lives (about 34 KB a
file), and discovering a folder makes an object per file (about 1 KB): a dataset of the 600,000
files of a 10M-rating shop in the one-file-per-customer layout held 2 GB before a row was read.
``scan`` lists the files once and gives each group a dataset of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recpipe.adapters.base import Lake
from recpipe.progress import SILENT, Progress

FILES_AT_ONCE = 2_000


def data_files(lake: Lake, name: str) -> list[str]:
    """The Parquet files of dataset ``name`` (not ``_``/``.`` files), as ``lake.list_files`` names them."""
    return [f for f in lake.list_files(name)
            if f.endswith(".parquet") and not f.rsplit("/", 1)[-1].startswith(("_", "."))]


def scan(lake: Lake, name: str, columns: list[str], files: list[str], *, partitioning: Any = None,
         schema: Any = None, progress: Progress = SILENT, task: str = "reading files") -> Iterator[Any]:
    """``columns`` of ``files`` (of dataset ``name``) as one Arrow table per group of files."""
    progress.start(task, len(files))
    for lo in range(0, len(files), FILES_AT_ONCE):
        group = files[lo:lo + FILES_AT_ONCE]
        yield lake.dataset(name, partitioning=partitioning, files=group, schema=schema).to_table(columns=columns)
        progress.advance(task, len(group))
