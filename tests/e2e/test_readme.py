"""The README's short tour, run as written and in order, in a fresh folder on the embedded
defaults: every command exits 0, and `recpipe serve` (run until Ctrl-C in the tour) serves the
page and the API before it is interrupted. Editing the tour or the CLI so that they disagree
fails here."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.mariadb import free_port

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"


def tour() -> list[list[str]]:
    """The commands of the first bash block under "## A short tour", without comments."""
    text = README.read_text().split("## A short tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert block, "README: no bash block under '## A short tour'"
    commands = []
    for line in block.group(1).splitlines():
        command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
        if command and not command.startswith(". "):  # activating the virtualenv
            commands.append(shlex.split(command))
    return commands


def test_the_tour_names_only_recpipe_commands() -> None:
    commands = tour()
    assert len(commands) >= 10 and all(c[0] == "recpipe" for c in commands), commands


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}, "COLUMNS": "200"}
    ran = []
    try:
        for command in tour():
            args = [sys.executable, "-m", "recpipe", *command[1:]]
            if command[1] == "serve":
                _serve_until_ctrl_c(args, env, tmp_path)
            else:
                done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
                assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
            ran.append(shlex.join(command))
    finally:
        subprocess.run([sys.executable, "-m", "recpipe", "vectors", "stop"], capture_output=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert (tmp_path / ".recpipe" / "recommendations").is_dir(), ran


def _serve_until_ctrl_c(args: list[str], env: dict[str, str], cwd: Path) -> None:
    port = str(free_port())
    args = [port if previous == "--port" else a for previous, a in zip(["", *args], args, strict=False)]
    server = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "<title>recpipe</title>" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/customers/112").status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr[-2000:]
