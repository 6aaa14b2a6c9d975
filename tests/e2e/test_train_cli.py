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
    assert "held-out ranking" in result.stdout
    for ranker in ("retrieval model", "popularity", "ease", "rating_model", "oracle", "cold Recall@10"):
        assert ranker in result.stdout, ranker
    assert "retrieval epoch  1" in result.stderr and "validation Recall@10" in result.stderr  # progress: stderr
    assert "refit epoch  1" in result.stderr and "rating baseline epoch  1" in result.stderr
    manifest = json.loads((home / "lake" / "ml-artifacts" / "model" / "manifest.json").read_text())
    assert manifest["objective"] == "retrieval" and manifest["metrics"]["baselines"]["oracle"]["recall_at_10"] > 0
    as_json = run("train", "--objective", "rating", "--max-epochs", "2", "--hybrid", "--json", home=home)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["kind"] == "hybrid" and doc["model_version"] != manifest["model_version"]
    assert "content_only" in doc["metrics"]
    rating = run("train", "--objective", "rating", "--max-epochs", "2", home=home)
    assert "per-item mean" in rating.stdout and "floor: features only" in rating.stdout
    assert "content epoch  1" in rating.stderr


def test_train_without_a_dataset_is_one_clear_error(tmp_path: Path) -> None:
    result = run("train", home=tmp_path / "home")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "no training dataset at" in line and "recpipe etl run" in line
    assert not (tmp_path / "home" / "lake" / "ml-artifacts").exists()


def test_train_help_explains_the_options(tmp_path: Path) -> None:
    result = run("train", "--help", home=tmp_path / "home")
    assert result.returncode == 0
    for word in ("--objective", "retrieval", "rating", "--refit", "--hybrid", "--max-epochs", "--patience",
                 "--temperature", "--artifacts-url", "--seed"):
        assert word in result.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (("--objective", "popular"), "unknown objective 'popular'"),
    (("--hybrid",), "--hybrid goes with --objective rating"),
])
def test_bad_training_options_are_one_clear_error(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    result = run("train", *args, home=tmp_path / "home")
    assert result.returncode == 2
    assert needle in one_line_error(result)
