"""``recpipe etl`` as a user runs it, including a run killed halfway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run

pytestmark = pytest.mark.e2e


def test_etl_run_and_show(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("source", "init", "--scale", "tiny", home=home).returncode == 0
    result = run("etl", "run", "--json", home=home)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["engine"] == "duckdb" and manifest["rows"] > 0
    assert manifest["generator"]["rmse_floor"]["features"] > 0  # the sidecar travels with the data
    shown = run("etl", "show", "--json", home=home)
    assert json.loads(shown.stdout) == manifest
    table = run("etl", "show", home=home)
    assert "training dataset" in table.stdout and f"{manifest['rows']:,}" in table.stdout


def test_etl_bad_input_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "no training dataset at" in one_line_error(run("etl", "show", home=home))
    assert "does not exist" in one_line_error(run("etl", "run", home=home))
    assert run("source", "init", "--scale", "tiny", home=home).returncode == 0
    text = one_line_error(run("etl", "run", "--engine", "pandas", home=home))
    assert "RECPIPE_ENGINE" in text or "engine" in text
    assert "s3://" in one_line_error(run("etl", "run", home=home, env={"RECPIPE_LAKE_URL": "gs://b/x"}))


def test_a_run_killed_midway_leaves_the_published_dataset_intact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("source", "init", "--customers", "2500", "--products", "300", home=home).returncode == 0
    first = json.loads(run("etl", "run", "--json", home=home).stdout)
    dataset = home / "lake" / "ratings_ml_training"
    before = {p.relative_to(dataset): p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    assert run("source", "init", "--customers", "3000", "--products", "300", "--seed", "9", "--replace",
               home=home).returncode == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    env["RECPIPE_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "recpipe", "etl", "run", "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staging = home / "lake" / "_staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until partitions are being written
        if any(staging.glob("ratings_ml_training-*/customerNumber=*")):
            break
        time.sleep(0.005)
    else:
        pytest.fail("the run never started writing partitions")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    after = {p.relative_to(dataset): p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    assert after == before, "the published dataset changed although the run was killed"
    shown = json.loads(run("etl", "show", "--json", home=home).stdout)
    assert shown["fingerprint"] == first["fingerprint"]
    # the next run succeeds, publishes the new source, and clears the dead run's staging
    second = json.loads(run("etl", "run", "--json", home=home).stdout)
    assert second["fingerprint"] != first["fingerprint"]
    assert not any(staging.glob("ratings_ml_training-*"))
