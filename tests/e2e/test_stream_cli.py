"""`recpipe stream` as a user runs it, on the embedded defaults after `recpipe demo`'s stages."""

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
    delivered = run("stream", "deliver", "--until-idle", "0.5", "--json", home=home)
    assert delivered.returncode == 0, delivered.stderr
    doc = json.loads(delivered.stdout)
    assert doc["delivered"] == 300 and doc["counts"]["ok"] == 1300  # the demo delivered its 1,000 already
    status = json.loads(run("stream", "status", "--json", home=home).stdout)
    assert all(s["lag"] == 0 for s in status["shards"]) and status["counts"]["ok"] == 1300
    tail = json.loads(run("stream", "tail", "-n", "3", "--json", home=home).stdout)
    assert len(tail) == 3 and all(len(r["recommended_items"]) == 10 for r in tail)
    table = run("stream", "tail", "-n", "2", home=home)
    assert table.returncode == 0 and "enriched records" in table.stdout
    shown = run("stream", "status", home=home)
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


def test_sigterm_delivers_what_is_buffered_and_exits(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    env.update({"RECPIPE_HOME": str(home)})
    sink = str(home.parent / "term-recs")  # a sink of its own: the demo's is written by delivery 'recpipe'
    proc = subprocess.Popen([sys.executable, "-m", "recpipe", "stream", "deliver", "--name", "term", "--json",
                             "--recommendations-url", sink, "--buffer-seconds", "30"], env=env, cwd=home.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)  # started and reading; the 30 s buffer is still open
        assert run("stream", "produce", "--count", "50", home=home).returncode == 0
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    status = json.loads(run("stream", "status", "--name", "term", "--recommendations-url", sink, "--json",
                            home=home).stdout)
    assert doc["counts"]["ok"] == status["counts"]["ok"] > 0 and all(s["lag"] == 0 for s in status["shards"])


def test_kinesis_and_s3_urls(home: Path, s3_bucket: str) -> None:
    import boto3

    boto3.client("kinesis").create_stream(StreamName="cli-clicks", ShardCount=2)
    aws = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                    "AWS_DEFAULT_REGION")}
    urls = ("--stream-url", "kinesis://cli-clicks")
    produced = run("stream", "produce", "--count", "120", *urls, "--json", home=home, env=aws)
    assert produced.returncode == 0, produced.stderr
    sink = ("--recommendations-url", f"s3://{s3_bucket}/recs")
    delivered = run("stream", "deliver", "--until-idle", "1", *urls, *sink, "--json", home=home, env=aws)
    assert delivered.returncode == 0, delivered.stderr
    assert json.loads(delivered.stdout)["counts"]["ok"] == 120
    tail = json.loads(run("stream", "tail", "-n", "2", *sink, "--json", home=home, env=aws).stdout)
    assert len(tail) == 2 and tail[0]["recommended_items"]


def test_produce_from_a_file_replays_real_events_and_sets_bad_lines_aside(home: Path) -> None:
    """`stream produce --from FILE` (and `-`): each line checked; a bad line is reported by its
    number and nothing is put for it; the good ones are delivered, and recorded in the session store."""
    stream, sink = home.parent / "replay-stream", home.parent / "replay-recs"
    good = [{"session_id": f"r{i}", "customer_number": None, "event_time": "1998-03-01T10:00:00+00:00",
             "browse_history": [{"product_code": "S10_1678", "quantity": 1, "in_shopping_cart": False}]}
            for i in range(5)]
    lines = [json.dumps(good[0]), "{not json", json.dumps(good[1]), "", json.dumps({"session_id": "x"}),
             *map(json.dumps, good[2:])]
    path = home.parent / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    replayed = run("stream", "produce", "--from", str(path), "--stream-url", str(stream), "--json", home=home)
    assert replayed.returncode == 0, replayed.stderr
    doc = json.loads(replayed.stdout)
    assert doc["events"] == 5 and [b["line"] for b in doc["bad_lines"]] == [2, 5]
    assert "not JSON" in doc["bad_lines"][0]["problem"] and "browse_history" in doc["bad_lines"][1]["problem"]
    shown = run("stream", "produce", "--from", str(path), "--stream-url", str(stream), home=home)
    assert shown.returncode == 0 and "line 2:" in shown.stdout and "2 bad lines set aside" in shown.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    env.update({"RECPIPE_HOME": str(home)})
    piped = subprocess.run([sys.executable, "-m", "recpipe", "stream", "produce", "--from", "-", "--stream-url",
                            str(stream), "--json"], input="\n".join(lines[:3]), capture_output=True, text=True,
                           env=env, cwd=home.parent, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["events"] == 2 and json.loads(piped.stdout)["source"] == "stdin"
    delivered = run("stream", "deliver", "--stream-url", str(stream), "--recommendations-url", str(sink),
                    "--name", "replay", "--until-idle", "0.5", "--json", home=home)
    assert delivered.returncode == 0, delivered.stderr
    counts = json.loads(delivered.stdout)["counts"]
    # the same lines replayed three times are the same events (named by their bytes): delivered once
    assert (counts["ok"], counts["dropped"]) == (5, 7)  # 5 + 5 + 2 put, nothing for the bad lines
    missing = run("stream", "produce", "--from", str(home.parent / "nope.ndjson"), home=home)
    assert "cannot read" in one_line_error(missing)
    both = run("stream", "produce", "--from", str(path), "--count", "3", home=home)
    assert both.returncode != 0 and "--from replays every event" in both.stderr
