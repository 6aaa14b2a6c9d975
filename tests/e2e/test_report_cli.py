"""``recpipe etl events`` and ``recpipe report`` as a user runs them: the sink read into the
lake, the figures as tables, JSON and a Prometheus textfile; again, nothing new is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run
from tests.support.delivered import shop_of_edges

pytestmark = pytest.mark.e2e


def test_events_then_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shop_of_edges(home / "recommendations")  # the default sink under RECPIPE_HOME
    first = run("etl", "events", "--json", home=home)
    assert first.returncode == 0, first.stderr
    totals = json.loads(first.stdout)
    assert len(totals["hours"]) == 3
    shown = run("report", "--no-refresh", "--hourly", "--prometheus-file", str(tmp_path / "recpipe.prom"), home=home)
    assert shown.returncode == 0, shown.stderr
    assert "28.57% (8.22%–64.11%)" in shown.stdout and "3 of 4 products picked from a list" in shown.stdout
    assert "2026-12-05T08:00Z" in shown.stdout  # --hourly
    assert "recpipe_online_clicks{" in (tmp_path / "recpipe.prom").read_text()
    doc = json.loads(run("report", "--json", home=home).stdout)  # --refresh: nothing new to read
    assert doc["attribution"] == {"pointing": 4, "attributed": 3, "unknown_list": 1, "rate": 0.75}
    again = run("etl", "show", "--json", home=home)
    assert "no training dataset" in one_line_error(again)  # the ratings were never published here
    bad = run("report", "--no-refresh", "--prometheus-file", str(tmp_path / "no" / "such" / "dir" / "x.prom"), home=home)
    assert bad.returncode != 0 and "cannot write" in one_line_error(bad)
