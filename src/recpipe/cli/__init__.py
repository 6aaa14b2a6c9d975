"""The ``recpipe`` command: one sub-command per pipeline stage."""

from __future__ import annotations

import sys

from rich.markup import escape

from recpipe.cli.app import app
from recpipe.cli.output import err_console
from recpipe.errors import RecpipeError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except RecpipeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: nothing half-written was published")
        sys.exit(130)
