"""`recpipe stream` as a user runs it, on the embedded defaults after `recpipe demo`'s stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> object:
    home = tmp_path_factory.mktemp("stream") / "home"
    built = run("demo", "--scale", "tiny", "--json", home=home)
    assert built.returncode == 0, built.stderr
    yield home
    run("vectors", "stop", home=home)


def test_produce_deliver_status_tail(home: Path) -> None:
    produced = run("stream", "produce", "--count", "300", "--rate", "5000", "--json", home=home)
    assert produced.returncode == 0, produced.stderr
    assert json.loads(produced.stdout)["events"] == 300
    delivered = run("stream", "deliver", "--until-idle", "0.5", "--name", "cli", "--json", home=home)
    assert delivered.returncode == 0, delivered.stderr
    doc = json.loads(delivered.stdout)
    assert doc["delivered"] == 800 and doc["counts"]["ok"] == 800  # the demo's 500 and these 300
    status = json.loads(run("stream", "status", "--name", "cli", "--json", home=home).stdout)
    assert all(s["lag"] == 0 for s in status["shards"]) and status["counts"]["ok"] == 800
    tail = json.loads(run("stream", "tail", "-n", "3", "--json", home=home).stdout)
    assert len(tail) == 3 and all(len(r["recommended_items"]) == 10 for r in tail)
    table = run("stream", "tail", "-n", "2", home=home)
    assert table.returncode == 0 and "enriched records" in table.stdout
    shown = run("stream", "status", "--name", "cli", home=home)
    assert shown.returncode == 0 and "delivered up to" in shown.stdout


def test_bad_input_is_one_line(home: Path) -> None:
    assert "exactly one of --count or --duration" in run("stream", "produce", home=home).stderr
    bad = run("stream", "deliver", "--stream-url", "ftp://x", home=home)
    assert "scheme 'ftp' is not accepted for the event stream" in one_line_error(bad)
    named = run("stream", "deliver", "--name", "no/slashes", home=home)
    assert "delivery name" in one_line_error(named)
    missing = run("stream", "produce", "--count", "5", "--stream-url", "kinesis://nope", home=home,
                  env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
    assert "Kinesis" in one_line_error(missing)
