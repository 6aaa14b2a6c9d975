"""``recpipe models`` and ``recpipe experiments`` as a user runs them, after the demo: a second
model through the gate, a refused one (exit 3), rollback and promotion, an experiment with the
closed loop's shoppers, its report kept at the stop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run

pytestmark = pytest.mark.e2e


def _json(*args: str, home: Path) -> object:
    result = run(*args, "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_life_of_a_model_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        _life(home, tmp_path)
    finally:
        run("vectors", "stop", home=home)  # the embedded PostgreSQL the demo started


def _life(home: Path, tmp_path: Path) -> None:
    assert run("demo", "--scale", "tiny", "--json", home=home).returncode == 0
    first = _json("models", "list", home=home)[0]["version"]  # type: ignore[index]
    # the demo's data again (its model was trained before its shoppers' events): a model as good.
    # With the events, next-item MRR@10 of the tiny shop's few hundred customers moves by about
    # the gate's 5% either way, which is noise at that size, not a worse model.
    assert run("train", "--no-events", home=home).returncode == 0
    loaded = _json("vectors", "load", home=home)
    second = loaded["model_version"]  # type: ignore[index]
    assert loaded["promoted"] and loaded["gate"]["serving"] == first and loaded["gate"]["checks"]  # type: ignore[index]
    rows = {r["version"]: r for r in _json("models", "list", home=home)}  # type: ignore[union-attr]
    assert rows[second]["serving"] and rows[first]["rollback_target"] and rows[first]["registered"]
    shown = _json("models", "show", first, home=home)
    assert shown["manifest"]["model_version"] == first and shown["promotions"]  # type: ignore[index]
    text = run("models", "list", home=home).stdout
    assert "serving" in text and "rollback target" in text

    # a worse model: loaded, not served, exit 3 and the verdict; --force serves it
    worse = tmp_path / "worse"
    shutil.copytree(home / "lake" / "ml-artifacts", worse)
    manifest = json.loads((worse / "model" / "manifest.json").read_text())
    manifest["model_version"] = "worse-1"
    manifest["metrics"]["recall_at_10"] *= 0.5
    (worse / "model" / "manifest.json").write_text(json.dumps(manifest))
    refused = run("vectors", "load", "--artifacts-url", str(worse), home=home)
    assert refused.returncode == 3, refused.stderr
    assert "gate" in refused.stdout and "failed" in refused.stdout and "recpipe models promote worse-1" in refused.stdout
    assert _json("vectors", "status", home=home)["model_version"] == second  # type: ignore[index]
    forced = _json("vectors", "load", "--artifacts-url", str(worse), "--force", home=home)
    assert forced["promoted"] and forced["gate"]["forced"]  # type: ignore[index]
    back = _json("models", "rollback", home=home)
    assert back["version"] == second and back["previous"] == "worse-1"  # type: ignore[index]
    assert _json("models", "promote", first, home=home)["version"] == first  # type: ignore[index]
    assert "nope" in one_line_error(run("models", "show", "nope", home=home))

    # an experiment with the closed loop's shoppers: the service assigns them, the report compares
    started = _json("experiments", "start", "ab", "--variant", f"A={first}", "--variant", "B=popularity",
                    home=home)
    assert [v["share"] for v in started["variants"]] == [50, 50]  # type: ignore[index]
    assert "is running" in one_line_error(run("experiments", "start", "cd", "--variant", f"A={first}",
                                              "--variant", "B=popularity", home=home))
    produced = _json("stream", "produce", "--closed-loop", "--count", "600", home=home)
    assert set(produced["arms"]) == {"variant A", "variant B"}  # type: ignore[index]
    assert run("stream", "deliver", "--until-idle", "1", home=home).returncode == 0
    report = _json("experiments", "report", "ab", home=home)
    service = {x["variant"]: x for x in report["lines"] if x["source"] == "service"}  # type: ignore[index]
    for name in ("A", "B"):
        assert service[name]["impressions"] == produced["arms"][f"variant {name}"]["impressions"]  # type: ignore[index]
        assert service[name]["clicks"] == produced["arms"][f"variant {name}"]["clicks"]  # type: ignore[index]
    assert service["A"]["ctr_vs_control"] is None and service["B"]["ctr_vs_control"]["low"] < 0.5
    stopped = _json("experiments", "stop", "ab", home=home)
    assert stopped["stopped_at"] and stopped["lines"] == report["lines"]  # type: ignore[index]
    assert _json("experiments", "report", "ab", home=home) == stopped
    assert "stopped already" in one_line_error(run("experiments", "stop", "ab", home=home))
    table = run("experiments", "report", "ab", home=home).stdout
    assert "control" in table and "popularity" in table
