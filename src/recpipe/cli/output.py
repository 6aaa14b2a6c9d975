"""How commands show results: Rich tables for people, ``--json`` for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit_json(document: Any) -> None:
    """A JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = Table(title=title, title_justify="left")
    for c in columns:
        out.add_column(c, overflow="fold")
    for row in rows:
        out.add_row(*(_cell(v) for v in row))
    console.print(out)


def mapping(title: str, values: Mapping[str, Any]) -> None:
    table(title, ("name", "value"), values.items())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


@contextmanager
def row_progress(totals: Mapping[str, int], *, quiet: bool = False) -> Iterator[Any]:
    """A progress bar per table; yields ``advance(table, rows)``. Silent under ``--json``."""
    if quiet:
        yield lambda name, rows: None
        return
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=False) as progress:
        tasks = {name: progress.add_task(name, total=total) for name, total in totals.items()}

        def advance(name: str, rows: int) -> None:
            if name in tasks:
                progress.advance(tasks[name], rows)

        yield advance
