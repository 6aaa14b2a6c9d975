"""The SageMaker training job's entry (``recpipe.jobs.sagemaker_train``) run as SageMaker runs
it: a process with SageMaker's settings (``SM_HPS``, ``SM_CHANNEL_LAKE``, ``SM_MODEL_DIR``,
``SM_OUTPUT_DIR``) and its ``/opt/ml`` layout under a temporary root; the lake read from the
input channel or from S3 (moto's server), the artifacts published to S3 where the loader looks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recpipe.contracts.artifacts import MANIFEST
from recpipe.jobs.sagemaker_train import hyperparameters, train_arguments, train_options
from recpipe.source.generate import ShopSpec
from tests.support.training import etl_lake

pytestmark = pytest.mark.integration
FAST = {"max-epochs": "2", "patience": "1", "events": "false"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etl_lake(tmp_path_factory.mktemp("shop"), ShopSpec(customers=150, products=30, seed=3))


def _opt_ml(root: Path, hps: dict[str, str], channel: Path | None) -> dict[str, str]:
    """SageMaker's layout and settings under ``root`` (the container's /opt/ml)."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hps))
    env = {"SM_INPUT_CONFIG_DIR": str(config), "SM_MODEL_DIR": str(root / "model"),
           "SM_OUTPUT_DIR": str(root / "output"), "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
           "SM_NUM_GPUS": "0", "SM_CURRENT_HOST": "algo-1", "RECPIPE_HOME": str(root / "home")}
    if channel is not None:
        data = root / "input" / "data" / "lake"
        shutil.copytree(channel, data)  # File mode: SageMaker copies the channel's S3 prefix here
        env["SM_CHANNEL_LAKE"] = str(data)
    return env


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recpipe.jobs.sagemaker_train"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600, check=False)


def test_hyperparameters_become_the_train_command() -> None:
    env = {"SM_HPS": json.dumps({"max-epochs": 3, "rating_baseline": "false", "sagemaker_program": "x.py"}),
           "SM_CHANNEL_LAKE": "/opt/ml/input/data/lake"}
    options = train_options(hyperparameters(env, ["--seed", "9", "--events=true"]), env)
    assert train_arguments(options) == ["train", "--json", "--events", "--lake-url", "/opt/ml/input/data/lake",
                                        "--max-epochs", "3", "--no-rating-baseline", "--seed", "9"]
    assert train_options(hyperparameters(env, ["--lake-url", "s3://b/lake"]), env)["lake-url"] == "s3://b/lake"


def test_the_job_reads_the_lake_channel_and_publishes_to_s3(lake: Path, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    env = _opt_ml(tmp_path / "opt" / "ml", {**FAST, "artifacts-url": f"s3://{s3_bucket}/artifacts"}, lake)
    done = _run(env)
    assert done.returncode == 0, done.stderr[-3000:]
    s3 = boto3.client("s3")
    stored = json.loads(s3.get_object(Bucket=s3_bucket, Key=f"artifacts/{MANIFEST}")["Body"].read())
    kept = json.loads((tmp_path / "opt" / "ml" / "model" / "model_manifest.json").read_text())
    assert kept["model_version"] == stored["model_version"]
    assert stored["data"]["rows"] == json.loads((lake / "ratings_ml_training" / "_manifest.json").read_text())["rows"]
    assert stored["training"]["options"]["max_epochs"] == 2
    assert json.loads(done.stdout)["model_version"] == stored["model_version"]  # --json: the manifest in the log
    assert not (tmp_path / "opt" / "ml" / "output" / "failure").exists()
    assert f"metric recall_at_10={stored['metrics']['recall_at_10']:.6f}" in done.stderr  # the metric definitions' regex


def test_the_job_reads_an_s3_lake(lake: Path, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    s3 = boto3.client("s3")
    for path in lake.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), s3_bucket, f"lake/{path.relative_to(lake).as_posix()}")
    env = _opt_ml(tmp_path / "opt" / "ml", {**FAST, "lake-url": f"s3://{s3_bucket}/lake",
                                            "artifacts-url": f"s3://{s3_bucket}/artifacts"}, None)
    done = _run(env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert s3.head_object(Bucket=s3_bucket, Key=f"artifacts/{MANIFEST}")


def test_a_failed_job_says_why_in_sagemakers_failure_file(tmp_path: Path, s3_bucket: str) -> None:
    empty = tmp_path / "empty-lake"
    empty.mkdir()
    env = _opt_ml(tmp_path / "opt" / "ml", {**FAST, "artifacts-url": f"s3://{s3_bucket}/artifacts"}, empty)
    done = _run(env)
    assert done.returncode != 0
    reason = (tmp_path / "opt" / "ml" / "output" / "failure").read_text()
    assert "no training dataset" in reason and "recpipe etl run" in reason, reason
    env = _opt_ml(tmp_path / "again" / "opt" / "ml", {"max-epochs": "many"}, empty)
    done = _run(env)
    assert done.returncode == 2
    assert "max-epochs" in (tmp_path / "again" / "opt" / "ml" / "output" / "failure").read_text()
