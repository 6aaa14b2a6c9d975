"""The ``recpipe`` command as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
FIXTURE = Path(__file__).parent.parent / "fixtures" / "classicmodels_mini.sql"


def run(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    base.update({"RECPIPE_HOME": str(home), "COLUMNS": "200"}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "recpipe", *args], capture_output=True, text=True,
                          env=base, cwd=home.parent, timeout=300)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    text = result.stderr.strip()
    assert text.startswith("error:") and "\n" not in text, result.stderr
    assert "Traceback" not in result.stderr
    return text


def test_demo_builds_and_summarises_a_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("demo", "--scale", "tiny", "--json", home=home)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [s["stage"] for s in summary["stages"]] == ["source", "etl", "train", "vectors", "serve", "session",
                                                       "stream", "report"]
    steps = summary["session"]["steps"]  # one customer clicks three products: their list follows
    assert [s["strategy"] for s in steps] == ["stored", "session", "session", "session"]
    assert all(s["clicked"] not in {i["id"] for i in s["items"]} for s in steps[1:])
    assert steps[1]["items"] != steps[0]["items"]
    assert next(s for s in summary["stages"] if s["stage"] == "serve")["result"].startswith("GET /recommendations/")
    assert summary["stream"]["produced"] == summary["stream"]["counts"]["ok"] == 1000
    arms = summary["stream"]["arms"]  # the shoppers reacted to the service's lists: the report counts the same
    shown = {x["strategy"]: x for x in summary["report"]["overall"] if x["source"] == "service"}
    assert shown["popular"]["impressions"] == arms["popular"]["impressions"] > 0
    assert shown["popular"]["clicks"] == arms["popular"]["clicks"]
    assert sum(x["clicks"] for k, x in shown.items() if k != "popular") == arms["model"]["clicks"]
    attribution = summary["report"]["attribution"]
    assert attribution["attributed"] == attribution["pointing"] == arms["model"]["clicks"] + arms["popular"]["clicks"]
    assert summary["stream"]["latest_object"].startswith(time.strftime("%Y/%m/%d/", time.gmtime()))
    assert (home / "source.db").is_file()
    assert (home / "lake" / "ratings_ml_training" / "_manifest.json").is_file()
    assert (home / "lake" / "ml-artifacts" / "model" / "manifest.json").is_file()
    metrics = summary["metrics"]
    assert metrics["objective"] == "retrieval"  # the default; ahead of "most popular"
    assert metrics["recall_at_10"] > metrics["baselines"]["popularity"]["recall_at_10"]
    floors = summary["rmse_floor"]
    assert floors["identity"] < floors["features"]
    # running it again rebuilds rather than failing, reusing the running embedded PostgreSQL;
    # with --serve it then serves the page on the demo's data until Ctrl-C
    try:
        out = _demo_serving(home)
        assert "recpipe demo: done" in out and "1,000 events → 1,000 enriched records" in out
        assert "online report (`recpipe report`)" in out
        lines = out.splitlines()  # piped (no COLUMNS): no section is empty, no table broken at 80 columns
        rules = [i for i, line in enumerate(lines) if line.startswith("───") and ". " in line]
        assert len(rules) == 8 and all(not lines[i + 1].startswith("───") for i in rules), lines
        assert any(len(line) > 100 for line in lines)
    finally:
        stopped = run("vectors", "stop", home=home)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout


def _demo_serving(home: Path) -> str:
    """``recpipe demo --serve``: wait for the page's address, open it, Ctrl-C; the output."""
    import signal

    import httpx

    from tests.support.mariadb import free_port

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_") and k != "COLUMNS"},
           "RECPIPE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "recpipe", "demo", "--scale", "tiny", "--serve", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=home.parent)
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if line.startswith("the page: open "):
                break
        page = lines[-1].split()[3]
        assert page.startswith(f"http://127.0.0.1:{port}/#/customers/"), lines[-5:]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(page.split("#")[0], timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer.status_code == 200 and "<title>recpipe</title>" in answer.text
        customer = page.rsplit("/", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/recommendations/{customer}").status_code == 200
        # the curl the demo suggests answers the very list its summary shows
        suggested = next(line for line in lines if line.startswith("try: curl ")).split("'")[1]
        shown = next(line for line in lines if f"GET /recommendations/{customer} → " in line)
        listed = shown.split(" → ")[1].split(" (model")[0].split(", ")
        assert [i["id"] for i in httpx.get(f"http://{suggested}").json()["items"]] == listed
        assert httpx.get(f"http://127.0.0.1:{port}/customers/{customer}").status_code == 200
    finally:
        child.send_signal(signal.SIGINT)
        rest, _ = child.communicate(timeout=60)
    assert child.returncode == 0, "".join(lines) + rest
    return "".join(lines) + rest


def test_source_init_table_output_and_sidecar(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("source", "init", "--customers", "50", "--products", "12", "--seed", "3", home=home)
    assert result.returncode == 0, result.stderr
    assert "rows written" in result.stdout and "RMSE floors" in result.stdout
    params = json.loads((home / "source.db.generator.json").read_text())
    assert params["spec"]["customers"] == 50 and params["spec"]["seed"] == 3
    assert set(params["rmse_floor"]) == {"features", "identity", "ratings"}
    refused = run("source", "init", "--customers", "50", home=home)
    assert "--replace" in one_line_error(refused)


def test_config_json_masks_secrets_and_names_origins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("config", "--json", home=home,
                 env={"RECPIPE_SOURCE_URL": "mysql+pymysql://shop:hunter2@db.internal:3306/cm"})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["source_url"] == {"env": "RECPIPE_SOURCE_URL", "origin": "environment RECPIPE_SOURCE_URL",
                                 "value": "mysql+pymysql://shop:***@db.internal:3306/cm"}
    assert doc["lake_url"]["origin"].startswith("default")
    assert "hunter2" not in result.stdout


@pytest.mark.parametrize(("args", "env", "needle"), [
    (("source", "init", "--customers", "-5"), {}, "--customers must be at least 1"),
    (("source", "init", "--scale", "gigantic"), {}, "unknown scale preset"),
    (("config",), {"RECPIPE_SOURCE_URL": "oracle://u:pw@h/db"}, "RECPIPE_SOURCE_URL"),
    (("source", "init"), {"RECPIPE_SOURCE_URL": "mysql+pymysql://u:pw@127.0.0.1:1/db"}, "cannot reach"),
    (("source", "load-dump", "missing.sql"), {}, "cannot read dump"),
    (("source", "add-ratings"), {}, "has no table(s) customers"),
    # regressions: tracebacks and errors that blamed the wrong setting
    (("config",), {"RECPIPE_SOURCE_URL": "sqlite:/relative.db"}, "'sqlite:' takes three slashes"),
    (("etl", "run", "--source-url", "mysql+pymysql://u:pw@127.0.0.1:1/db"), {}, "cannot reach MySQL/MariaDB"),
    (("etl", "run", "--source-url", "postgresql://u:pw@127.0.0.1:1/db"), {}, "(--source-url)"),
    (("etl", "run", "--lake-url", "oracle://x"), {"RECPIPE_LAKE_URL": "/tmp/fine"}, "--lake-url='oracle://x'"),
    (("etl", "show", "--lake-url", "s3://no-such-bucket/x"),
     {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
      "AWS_CONFIG_FILE": "/nonexistent", "AWS_ENDPOINT_URL": ""}, "no AWS credentials"),
    (("etl", "run", "--max-quarantine-fraction", "2"), {}, "--max-quarantine-fraction must be within 0 and 1"),
    (("config",), {"RECPIPE_API_KEY": "short secret"}, "RECPIPE_API_KEY=the value given"),
])
def test_bad_input_is_one_line_and_non_zero(tmp_path: Path, args, env, needle) -> None:
    text = one_line_error(run(*args, home=tmp_path / "home", env=env))
    assert needle in text
    assert "pw@" not in text


def test_load_dump_and_add_ratings_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    loaded = run("source", "load-dump", str(FIXTURE), "--json", home=home)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["counts"]["orderdetails"] == 14
    added = run("source", "add-ratings", "--json", home=home)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["ratings"] == 12
    not_cm = tmp_path / "other.sql"
    not_cm.write_text("CREATE TABLE t (id int);")
    assert "not a classicmodels dump" in one_line_error(run("source", "load-dump", str(not_cm),
                                                            "--replace", home=home))


def test_help_explains_every_stage(tmp_path: Path) -> None:
    result = run("--help", home=tmp_path / "home")
    assert result.returncode == 0
    for word in ("demo", "config", "source"):
        assert word in result.stdout
    init_help = run("source", "init", "--help", home=tmp_path / "home")
    assert "--customers" in init_help.stdout and "--scale" in init_help.stdout
