"""`recpipe package` for real: the Lambda zip and its layer are built from Linux wheels (the
versions Lambda's python3.11 runtime can run), stay within Lambda's limits, and every handler
runs from a clean directory (only the zips and the standard library: `python -I -S`): the
transformation on a Firehose test event, the service on a Function URL event, and the vectors
loader on an S3 notification, against real PostgreSQL + pgvector."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.lambda_events import function_url_event
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

RUN = """
import json, sys, time
sys.path[:0] = sys.argv[1].split(":")
started = time.perf_counter()
module, name = sys.argv[2].rsplit(".", 1)
handler = getattr(__import__(module, fromlist=[name]), name)
imported = time.perf_counter() - started
answer = handler(json.loads(sys.argv[3]), None)
print(json.dumps({"answer": answer, "import_seconds": imported, "first_call_seconds": time.perf_counter() - started - imported,
                  "torch_or_arrow": sorted(m for m in ("torch", "pyarrow", "duckdb") if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dist") / "aws"
    done = subprocess.run([sys.executable, "-m", "recpipe", "package", "--output", str(out), "--json"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    site = out.parent / "site"
    with zipfile.ZipFile(out / "lambda.zip") as zf:
        zf.extractall(site)
    with zipfile.ZipFile(out / "arrow-layer.zip") as zf:  # as Lambda unpacks a layer: under /opt
        zf.extractall(out.parent / "opt")
    return site, manifest


def _call(site: Path, handler: str, event: dict, stack: Stack, *, layer: bool = False, **env: str) -> dict:
    settings = stack.settings()
    env = {"PATH": os.environ["PATH"], "HOME": str(site.parent), "RECPIPE_VECTORS_URL": settings.vectors_url,
           "RECPIPE_ARTIFACTS_URL": settings.artifacts_url, "RECPIPE_HOME": str(site.parent / "home"), **env}
    path = f"{site}:{site.parent / 'opt' / 'python'}" if layer else str(site)
    done = subprocess.run([sys.executable, "-I", "-S", "-c", RUN, path, handler, json.dumps(event)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=site.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_zips_stay_within_lambdas_limits_and_are_described(built: tuple[Path, dict]) -> None:
    site, manifest = built
    out = Path(manifest["output"])
    zipped = {name: manifest["files"][name] for name in ("lambda.zip", "arrow-layer.zip")}
    for name, entry in zipped.items():
        assert entry["bytes"] <= 50 * 2**20
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
        print(f"{name}: {entry['bytes'] / 2**20:.1f} MiB zipped, {entry['unzipped_bytes'] / 2**20:.1f} MiB unzipped")
    assert sum(entry["unzipped_bytes"] for entry in zipped.values()) <= 250 * 2**20  # the loader: zip + layer
    assert manifest["layers"] == {"vectors_load": ["arrow-layer.zip"]}
    assert not (site / "torch").exists() and not (site / "pyarrow").exists() and (site / "recpipe").is_dir()
    assert (site / "recpipe" / "api" / "page" / "static" / "app.js").is_file()  # the page, served by the Lambda too
    assert (out.parent / "opt" / "python" / "pyarrow").is_dir()
    assert (out / "glue" / "glue_etl.py").is_file() and list((out / "glue").glob("recpipe-*.whl"))


def test_the_transformation_runs_from_the_zip(built: tuple[Path, dict], stack: Stack) -> None:
    site, manifest = built
    event = {"session_id": "s1", "customer_number": 103, "event_time": "2026-11-28T10:00:00Z",
             "browse_history": [], "country": "France"}
    firehose = {"invocationId": "i", "deliveryStreamArn": "arn:aws:firehose:us-east-1:1:deliverystream/x",
                "region": "us-east-1", "records": [
                    {"recordId": "r1", "approximateArrivalTimestamp": 1,
                     "data": base64.b64encode(json.dumps(event).encode()).decode()},
                    {"recordId": "r2", "approximateArrivalTimestamp": 1, "data": "!!"}]}
    run = _call(site, manifest["handlers"]["transform"], firehose, stack)
    records = run["answer"]["records"]
    assert [r["result"] for r in records] == ["Ok", "ProcessingFailed"]
    enriched = json.loads(base64.b64decode(records[0]["data"]))
    assert enriched["model_version"] == stack.version and enriched["recommended_items"]
    assert run["torch_or_arrow"] == []
    print(f"transform handler: import {run['import_seconds']:.2f} s, first call {run['first_call_seconds']:.2f} s")


def test_the_inference_service_runs_from_the_zip(built: tuple[Path, dict], stack: Stack) -> None:
    site, manifest = built
    event = function_url_event("/recommendations/103", "k=3")
    run = _call(site, manifest["handlers"]["inference"], event, stack)
    assert run["answer"]["statusCode"] == 200, run["answer"]
    body = json.loads(run["answer"]["body"])
    assert body["model_version"] == stack.version and len(body["items"]) == 3
    print(f"inference handler: import {run['import_seconds']:.2f} s, first call {run['first_call_seconds']:.2f} s")


def test_the_vectors_loader_runs_from_the_zip_and_its_layer(built: tuple[Path, dict], stack: Stack,
                                                            pg_url: str) -> None:
    """An S3 notification for the model's manifest loads the artifacts (and the catalog from
    the source) into an empty database; a notification for another object loads nothing."""
    site, manifest = built
    handler = manifest["handlers"]["vectors_load"]
    other = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "ml-artifacts/model/loss.png"}}}]}
    run = _call(site, handler, other, stack, layer=True, RECPIPE_VECTORS_URL=pg_url)
    assert run["answer"] == {"loaded": False, "keys": ["ml-artifacts/model/loss.png"]}
    notification = {"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": "artifacts"}, "object": {"key": "ml-artifacts/model/manifest.json"}}}]}
    run = _call(site, handler, notification, stack, layer=True, RECPIPE_VECTORS_URL=pg_url,
                RECPIPE_SOURCE_URL=f"sqlite:///{stack.root / 'source.db'}")
    answer = run["answer"]
    assert answer["loaded"] and answer["model_version"] == stack.version
    assert answer["items"] > 0 and answer["users"] > 0 and answer["catalog"] == 60
    print(f"vectors loader: import {run['import_seconds']:.2f} s, load {run['first_call_seconds']:.2f} s")


def test_the_sagemaker_source_dir_runs_the_training_job_from_its_wheel(built: tuple[Path, dict], tmp_path: Path) -> None:
    """As SageMaker's script mode does: unpack, install requirements.txt's wheel, run train.py."""
    import tarfile

    from recpipe.source.generate import ShopSpec
    from tests.support.training import etl_lake

    _, manifest = built
    out = Path(manifest["output"])
    entry = manifest["files"]["sagemaker/sourcedir.tar.gz"]
    assert hashlib.sha256((out / "sagemaker" / "sourcedir.tar.gz").read_bytes()).hexdigest() == entry["sha256"]
    code = tmp_path / "opt" / "ml" / "code"
    with tarfile.open(out / "sagemaker" / "sourcedir.tar.gz") as tar:
        tar.extractall(code, filter="data")
    wheel = next(code.glob("recpipe-*.whl"))
    requirements = (code / "requirements.txt").read_text().splitlines()
    assert requirements[0] == f"./{wheel.name}[aws]" and not any(r.startswith("torch") for r in requirements)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    lake = etl_lake(tmp_path / "shop", ShopSpec(customers=80, products=20, seed=2))
    env = {**os.environ, "PYTHONPATH": str(site), "SM_CHANNEL_LAKE": str(lake), "SM_MODEL_DIR": str(tmp_path / "model"),
           "SM_OUTPUT_DIR": str(tmp_path / "output"), "RECPIPE_HOME": str(tmp_path / "home"),
           "SM_HPS": json.dumps({"artifacts-url": str(tmp_path / "artifacts"), "max-epochs": "1", "events": "false"})}
    check = "import recpipe, sys; print(recpipe.__file__)"
    where = subprocess.run([sys.executable, "-c", check], env=env, cwd=code, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))  # the wheel's recpipe, not this checkout's
    done = subprocess.run([sys.executable, "train.py"], env=env, cwd=code, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "model" / "model_manifest.json").read_text())["counts"]["users"] > 0
