"""The command line's rough edges found by trying it (issue: hardening): vector queries before
any load, a connection error's cause, --help's flags and defaults, `recpipe config`'s words for
an unset key, tables through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run

pytestmark = pytest.mark.e2e


def piped(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """As ``run``, but with no COLUMNS: what a pipe or a CI log gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_") and k != "COLUMNS"}
    env["RECPIPE_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "recpipe", *args], capture_output=True, text=True, env=env,
                          cwd=home.parent, timeout=300)


def test_vector_queries_before_any_load_say_what_to_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        for args in (("vectors", "similar", "S10_1002"), ("vectors", "for-user", "112")):
            said = one_line_error(run(*args, home=home))
            assert "no embeddings are loaded" in said and "recpipe vectors load" in said
    finally:
        run("vectors", "stop", home=home)


def test_a_refused_connection_keeps_its_cause(tmp_path: Path) -> None:
    said = one_line_error(run("vectors", "similar", "S10_1002", home=tmp_path / "home",
                              env={"RECPIPE_VECTORS_URL": "postgresql://u@127.0.0.1:1/db"}))
    assert "Connection refused" in said and "127.0.0.1" in said


def test_help_shows_flags_as_flags_and_keeps_its_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"
    deliver = run("stream", "deliver", "--help", home=home).stdout
    assert "--json" in deliver and "<bool>" not in deliver
    serve = run("serve", "--help", home=home).stdout
    assert "RECPIPE_SERVE_EF_SEARCH, else 40" in " ".join(serve.replace("│", " ").split())


def test_config_says_what_an_unset_key_means_and_a_pipe_gets_whole_lines(tmp_path: Path) -> None:
    shown = piped("config", home=tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    assert "unset: no key (the service answers anyone who reaches it)" in shown.stdout
    assert "recpipe chooses" not in shown.stdout.split("RECPIPE_API_KEY")[1].splitlines()[0]
