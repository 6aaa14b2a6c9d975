"""A full disk under the lake or the artifacts: ``etl run`` and ``train`` stop with one line
naming the place, exit 3, publish nothing (what was published stays byte for byte) and leave
no staging behind. The disk is a small tmpfs mounted by the test (root only: in CI a failure
to mount fails the test; elsewhere it is skipped with the reason)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run
from tests.support.files import tree_fingerprint

pytestmark = pytest.mark.e2e


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """mount(name, size): a tmpfs of ``size`` under the test's folder, unmounted afterwards."""
    with ExitStack() as mounted:
        yield lambda name, size: mounted.enter_context(_tmpfs(tmp_path / name, size))


def test_etl_run_on_a_full_lake_publishes_nothing(tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    home, lake = tmp_path / "home", tmpfs("lake", "3m")
    env = {"RECPIPE_LAKE_URL": str(lake)}
    assert run("source", "init", "--scale", "tiny", home=home, env=env).returncode == 0
    assert run("etl", "run", home=home, env=env).returncode == 0
    before = tree_fingerprint(lake)
    assert run("source", "init", "--customers", "20000", "--products", "500", "--replace", home=home,
               env=env).returncode == 0
    full = run("etl", "run", home=home, env=env)
    assert full.returncode == 3 and f"no space left on the disk of {lake}" in one_line_error(full)
    assert tree_fingerprint(lake) == before and not (lake / "_staging").exists()
    assert run("etl", "show", home=home, env=env).returncode == 0


def test_train_on_full_artifacts_publishes_nothing(tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    home, artifacts = tmp_path / "home", tmpfs("artifacts", "1m") / "ml-artifacts"
    env = {"RECPIPE_ARTIFACTS_URL": str(artifacts)}
    assert run("source", "init", "--scale", "tiny", home=home, env=env).returncode == 0
    assert run("etl", "run", home=home, env=env).returncode == 0
    assert run("train", "--max-epochs", "1", home=home, env=env).returncode == 0
    before = tree_fingerprint(artifacts)
    assert run("source", "init", "--customers", "20000", "--products", "500", "--replace", home=home,
               env=env).returncode == 0
    assert run("etl", "run", home=home, env=env).returncode == 0
    full = run("train", "--max-epochs", "1", home=home, env=env)
    last = full.stderr.strip().splitlines()[-1]  # after the epochs' progress lines
    assert full.returncode == 3 and last.startswith("error: no space left on the disk of"), full.stderr
    assert "Traceback" not in full.stderr
    assert tree_fingerprint(artifacts) == before and not (artifacts.parent / "_staging").exists()


def test_stream_produce_on_a_full_disk_is_one_line_and_keeps_what_was_put(
        tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    home, stream = tmp_path / "home", tmpfs("stream", "2m")
    env = {"RECPIPE_STREAM_URL": str(stream)}
    assert run("source", "init", "--scale", "tiny", home=home, env=env).returncode == 0
    assert run("stream", "produce", "--count", "200", "--rate", "100000", home=home, env=env).returncode == 0
    full = run("stream", "produce", "--count", "50000", "--rate", "100000", home=home, env=env)
    assert full.returncode == 3 and "cannot append to the stream log" in one_line_error(full)
    from recpipe.adapters import open_stream

    log = open_stream(str(stream))
    kept = sum(len(log.read(s.id, None, 100_000)[0]) for s in log.shards())
    assert kept >= 200 and kept == sum(int(v) for v in log.latest().values())  # what was put stays put
