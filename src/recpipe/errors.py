"""One error family for the whole project.

Every error says *what* went wrong, *where* (the setting, table, path or URL) and *how to fix
it*. The command line prints ``str(error)`` as a single line and exits non-zero; nothing
else should reach a user as a bare traceback.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


class RecpipeError(Exception):
    """Base class: a problem the user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(RecpipeError):
    """A setting has a value recpipe cannot use (bad URL, unknown scheme, bad number)."""

    exit_code = 2


class InputError(RecpipeError):
    """A file, dump, argument or record is not what it should be."""

    exit_code = 2


class NotFound(InputError):
    """An id or name that is nowhere: not embedded and not in the catalog (HTTP 404)."""


class NotPublished(InputError):
    """What a stage reads has not been published yet (no dataset, no model): run the stage
    before it. A command exits 2; the service answers 503 with Retry-After, as while starting."""


class ServiceError(RecpipeError):
    """A backend (database, object store, stream) cannot be reached or refused us."""

    exit_code = 3


class InternalError(RecpipeError):
    """An invariant recpipe keeps did not hold: a bug in recpipe, not the user's input (HTTP 500).
    Whatever was being written is left unpublished."""

    exit_code = 70  # EX_SOFTWARE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "this is a bug in recpipe: please report it; nothing was published")


class MissingDependencyError(RecpipeError):
    """An optional dependency for a backend is not installed."""

    exit_code = 2

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed",
            hint=f"install it with: {install_command(extra)}",
        )


def said(exc: BaseException, limit: int = 300) -> str:
    """What an exception from a library says, on one line: every line of its text (libpq puts
    the cause on the first and the advice on the next), or its type if it says nothing."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__)[:limit]


def checkout() -> Path | None:
    """The source tree recpipe runs from (an editable install), or None for an installed package."""
    root = Path(__file__).resolve().parents[2]  # src/recpipe/errors.py -> the checkout
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "recpipe").is_dir() else None


def install_command(extra: str) -> str:
    """The pip command that adds ``extra``: into this checkout when recpipe runs from one,
    else from the package index."""
    root = checkout()
    return f"pip install -e '{root}[{extra}]'" if root else f"pip install 'recpipe[{extra}]'"


def require(module: str, extra: str, purpose: str) -> Any:
    """Import an optional dependency, or fail saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra, purpose) from exc
