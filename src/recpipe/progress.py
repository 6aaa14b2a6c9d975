"""How long work reports as it goes: one protocol for every stage.

The command line implements it with Rich bars (``recpipe.cli.output.bars``), ``--json`` and
library callers with :data:`SILENT`, tests with a recorder. A stage never prints.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def status(self, text: str) -> None:
        """What is happening now, in a few words ("building the HNSW indexes")."""

    def start(self, task: str, total: int | None = None) -> None:
        """A countable piece of work begins (or begins again, at zero): ``total`` units if known."""

    def advance(self, task: str, n: int) -> None:
        """``n`` more units of ``task`` are done (rows read, samples trained)."""

    def note(self, text: str) -> None:
        """A line worth keeping in the log (an epoch's figures)."""


class Silent:
    """Reports nothing."""

    def status(self, text: str) -> None:
        pass

    def start(self, task: str, total: int | None = None) -> None:
        pass

    def advance(self, task: str, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass


SILENT: Progress = Silent()
