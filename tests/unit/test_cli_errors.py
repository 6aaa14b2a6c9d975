"""What the command line prints for each error type: one line, exit code by type, and text in
square brackets kept (Rich would read "[mysql]" or "[1.0,2.0]" as markup and drop it)."""

from __future__ import annotations

import pytest

import recpipe.cli as cli
from recpipe.errors import (
    ConfigError,
    InputError,
    InternalError,
    MissingDependencyError,
    NotPublished,
    RecpipeError,
    ServiceError,
    install_command,
)

BRACKETED = "embedding [1.0, 2.0] for [bold]x[/bold] in [red]"
ERRORS = [(ConfigError(BRACKETED, hint="use one of [a, b]"), 2), (InputError(BRACKETED, hint="[x]"), 2),
          (NotPublished(BRACKETED, hint="[run]"), 2), (ServiceError(BRACKETED, hint="[retry]"), 3),
          (InternalError(BRACKETED), 70), (RecpipeError(BRACKETED, hint="[h]"), 1)]


@pytest.mark.parametrize(("error", "code"), ERRORS, ids=lambda e: type(e).__name__ if isinstance(e, Exception) else "")
def test_each_error_type_prints_its_brackets_on_one_line(error: RecpipeError, code: int,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> None:
        raise error

    monkeypatch.setattr(cli, "app", fail)
    monkeypatch.setenv("COLUMNS", "500")
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == code
    printed = capsys.readouterr().err.strip()
    assert printed == f"error: {error}" and BRACKETED in printed and "\n" not in printed


def test_a_missing_dependency_names_the_extra_and_how_to_install_it(capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    error = MissingDependencyError("pymysql", "mysql", "A MySQL source")
    assert "[mysql]" in str(error)
    # this checkout runs as an editable install: the hint installs into it
    assert install_command("mysql").startswith("pip install -e '") and install_command("mysql").endswith("[mysql]'")
    monkeypatch.setattr(cli, "app", lambda: (_ for _ in ()).throw(error))
    with pytest.raises(SystemExit):
        cli.main()
    assert "[mysql]" in capsys.readouterr().err
