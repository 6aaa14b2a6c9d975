"""The ``recpipe`` command: one sub-command per pipeline stage."""

from __future__ import annotations

import sys

from rich.markup import escape
from typer.core import TyperOption

from recpipe.cli.app import app
from recpipe.cli.output import err_console
from recpipe.errors import RecpipeError

__all__ = ["app", "main"]

_type_shown = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: object) -> str | None:
    """typer 0.29 shows every on/off flag as ``--json <bool>``, as if it took a value: it does not."""
    return None if self.is_flag else _type_shown(self, ctx)  # type: ignore[arg-type]


TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]


def main() -> None:
    try:
        app()
    except RecpipeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: nothing half-written was published")
        sys.exit(130)
