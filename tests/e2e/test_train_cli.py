"""``recpipe train`` as users run it: progress and a comparison table, --json, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run

pytestmark = pytest.mark.e2e


def test_train_after_etl_prints_the_evaluation_and_publishes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("source", "init", "--scale", "tiny", home=home).returncode == 0
    assert run("etl", "run", home=home).returncode == 0
    result = run("train", "--max-epochs", "4", home=home)
    assert result.returncode == 0, result.stderr
    assert "held-out evaluation" in result.stdout and "per-item mean" in result.stdout
    assert "floor: features only" in result.stdout
    assert "content epoch  1" in result.stderr  # progress goes to stderr
    manifest = json.loads((home / "lake" / "ml-artifacts" / "model" / "manifest.json").read_text())
    as_json = run("train", "--max-epochs", "2", "--hybrid", "--json", home=home)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["kind"] == "hybrid" and doc["model_version"] != manifest["model_version"]
    assert "content_only" in doc["metrics"]


def test_train_without_a_dataset_is_one_clear_error(tmp_path: Path) -> None:
    result = run("train", home=tmp_path / "home")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "no training dataset at" in line and "recpipe etl run" in line
    assert not (tmp_path / "home" / "lake" / "ml-artifacts").exists()


def test_train_help_explains_the_options(tmp_path: Path) -> None:
    result = run("train", "--help", home=tmp_path / "home")
    assert result.returncode == 0
    for word in ("--hybrid", "--max-epochs", "--patience", "--artifacts-url", "--seed"):
        assert word in result.stdout
