"""How commands show results: Rich tables for people, ``--json`` for programs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from recpipe.progress import SILENT
from recpipe.progress import Progress as ProgressReport

PIPED_WIDTH = 240  # Rich wraps at 80 columns when it cannot ask a terminal: tables then break mid-word


def _width(stream: Any) -> int | None:
    """The terminal's width (None: Rich asks it), else COLUMNS, else ``PIPED_WIDTH``."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def emit_json(document: Any) -> None:
    """A JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = Table(title=escape(title), title_justify="left")
    for c in columns:
        out.add_column(c, overflow="fold")
    for row in rows:
        out.add_row(*(_cell(v) for v in row))
    console.print(out)


def mapping(title: str, values: Mapping[str, Any]) -> None:
    table(title, ("name", "value"), values.items())


def _cell(value: Any) -> str:
    """A value as table text; text is escaped (a product named "[x]" stays "[x]")."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else escape(str(value))


class RichBars:
    """``recpipe.progress.Progress`` as Rich bars on stderr: a status line, a bar per task."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.line = bars.add_task("", total=None, visible=False)
        self.tasks: dict[str, TaskID] = {}

    def status(self, text: str) -> None:
        self.bars.update(self.line, description=escape(text), visible=True)

    def start(self, task: str, total: int | None = None) -> None:
        if task in self.tasks:
            self.bars.reset(self.tasks[task], total=total)
        else:
            self.tasks[task] = self.bars.add_task(escape(task), total=total)

    def advance(self, task: str, n: int) -> None:
        if task in self.tasks:
            self.bars.advance(self.tasks[task], n)

    def note(self, text: str) -> None:
        self.bars.console.print(escape(text), highlight=False)


class _Left(TimeRemainingColumn):
    """How long a bar has left ("3:12 left"), once its rate is known; nothing for a status line."""

    def render(self, task: Task) -> Text:
        if task.total is None or task.finished or not task.completed:
            return Text("")
        left = super().render(task)
        return Text(f"{left.plain} left", style=left.style)


@contextmanager
def bars(*, quiet: bool = False, transient: bool = False) -> Iterator[ProgressReport]:
    """Progress for a stage: Rich bars, or nothing under ``--json``."""
    if quiet:
        yield SILENT
        return
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), _Left(), console=err_console, transient=transient) as p:
        shown = RichBars(p)
        try:
            yield shown
        except BaseException:
            p.live.transient = True  # a failed stage leaves only its one-line error
            raise
        p.update(shown.line, visible=False)  # the work is done: its last status is history
