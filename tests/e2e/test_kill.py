"""SIGKILL during each batch stage: whatever the moment, the previously published state is
whole (the old one, or the new one if the kill came after the switch, never a mix) and the
next run succeeds. Each stage is timed once, then killed at several points of its run (timed
again by a run that ended before its kill: the machine's load moves)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_cli import run
from tests.support.files import tree_fingerprint

pytestmark = pytest.mark.e2e

FRACTIONS = (0.15, 0.35, 0.55, 0.75, 0.95)  # of the stage's measured duration


def _source(home: Path) -> str:
    import sqlite3

    with sqlite3.connect(home / "source.db") as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return json.dumps({t: c.execute(f'SELECT count(*), total(rowid) FROM "{t}"').fetchone() for t in tables})


def _vectors(home: Path) -> str:
    status = json.loads(run("vectors", "status", "--json", home=home).stdout)
    return json.dumps({k: status[k] for k in ("model_version", "items", "users", "catalog")})


def _whole(stage: str, home: Path) -> None:
    """What the next stage reads is complete and self-consistent."""
    import sqlite3

    import pyarrow.dataset as ds

    from recpipe.adapters import open_artifacts, open_lake
    from recpipe.contracts.artifacts import ITEM_EMBEDDINGS, ModelManifest
    from recpipe.contracts.dataset import DatasetManifest
    from recpipe.inference.model import Model

    if stage == "source init":
        with sqlite3.connect(home / "source.db") as c:
            assert c.execute("SELECT count(*) FROM customers").fetchone()[0] in (1200, 1500)
            assert c.execute("SELECT count(*) FROM ratings").fetchone()[0] > 0
    elif stage == "etl run":
        lake = home / "lake"
        manifest = DatasetManifest.read(open_lake(str(lake)))
        assert ds.dataset(lake / "ratings_ml_training", format="parquet").count_rows() == manifest.rows
    elif stage == "train":
        store, name = open_artifacts(str(home / "lake" / "ml-artifacts"))
        manifest = ModelManifest.read(store, name)
        assert Model.load(store, name, manifest).version == manifest.model_version
        lines = (home / "lake" / "ml-artifacts" / ITEM_EMBEDDINGS).read_text().count("\n") - 1
        assert lines == manifest.counts["items"]
    else:
        status = json.loads(run("vectors", "status", "--json", home=home).stdout)
        similar = run("vectors", "similar", "S10_1678", "--json", home=home)
        assert status["items"] > 0 and similar.returncode in (0, 2), similar.stderr


STAGES: dict[str, tuple[tuple[str, ...], Callable[[Path], str]]] = {
    "source init": (("source", "init", "--customers", "1500", "--products", "200", "--replace", "--seed", "5"),
                    _source),
    "etl run": (("etl", "run"), lambda home: tree_fingerprint(home / "lake" / "ratings_ml_training")),
    "train": (("train", "--max-epochs", "2"), lambda home: tree_fingerprint(home / "lake" / "ml-artifacts")),
    "vectors load": (("vectors", "load"), _vectors),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("kill") / "home"
    for args in (("source", "init", "--customers", "1200", "--products", "200"), ("etl", "run"),
                 ("train", "--max-epochs", "2"), ("vectors", "load")):
        done = run(*args, home=home)
        assert done.returncode == 0, done.stderr
    yield home
    run("vectors", "stop", home=home)


def _killed_at(args: tuple[str, ...], env: dict[str, str], home: Path, at: float) -> float | None:
    """Run the stage and SIGKILL it ``at`` seconds in: None if it was killed, else how long it took."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "recpipe", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=home.parent)
    while time.monotonic() - started < at:
        if proc.poll() is not None:
            return time.monotonic() - started
        time.sleep(0.01)
    if proc.poll() is not None:
        return time.monotonic() - started
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_killed_stage_leaves_the_published_state_whole(home: Path, stage: str) -> None:
    args, state = STAGES[stage]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")} | {"RECPIPE_HOME": str(home)}
    started = time.monotonic()
    done = run(*args, home=home)
    assert done.returncode == 0, done.stderr
    seconds = time.monotonic() - started
    kills = changed = 0
    for fraction in FRACTIONS:
        for _ in range(2):  # a run that ends before its kill was faster than the timed one: again, timed by it
            before = state(home)
            took = _killed_at(args, env, home, seconds * fraction)
            changed += state(home) != before  # killed after the switch: the new state, whole
            _whole(stage, home)
            if took is None:
                kills += 1
                break
            seconds = min(seconds, took)  # the machine's load fell since the stage was timed
    assert kills >= 3, f"only {kills} of {len(FRACTIONS)} runs were still going when killed"
    print(f"{stage}: {kills} kills, {changed} after the switch, every state whole")
    done = run(*args, "--json", home=home) if stage != "source init" else run(*args, home=home)
    assert done.returncode == 0, done.stderr  # the next run succeeds
    assert not (home / "lake" / "_staging").exists() or not any((home / "lake" / "_staging").iterdir())
