"""Attribution by hand on a tiny case: which events earn which list a click, a cart or a
purchase, and the Wilson intervals of the rates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recpipe.adapters import open_lake, open_recommendations
from recpipe.etl.online import run as read_sink
from recpipe.report.attribution import Rate
from recpipe.report.pipeline import run as report
from tests.support.delivered import shop_of_edges


def test_wilson_intervals_match_the_textbook() -> None:
    r = Rate.of(2, 7)
    assert (round(r.rate, 4), round(r.low, 3), round(r.high, 3)) == (0.2857, 0.082, 0.641)
    assert Rate.of(0, 10).low == 0.0 and round(Rate.of(0, 10).high, 3) == 0.278
    assert Rate.of(10, 10).high == 1.0 and Rate.of(0, 0) == Rate(0.0, 0.0, 1.0)
    assert not Rate.of(10, 100).overlaps(Rate.of(40, 100)) and Rate.of(10, 100).overlaps(Rate.of(15, 100))


def test_events_earn_their_lists_clicks_carts_and_purchases(tmp_path: Path) -> None:
    shop_of_edges(tmp_path / "sink")
    lake = open_lake(str(tmp_path / "lake"))
    read_sink(open_recommendations(str(tmp_path / "sink")), lake)
    got = report(lake)
    # e1 names r-0 (never shown); e2's cart and e3's purchase name r-1 (S2 is in it); e5's cart names r-5
    assert got.pointing == {"pointing": 4, "attributed": 3, "unknown_list": 1}
    lines = {(x.source, x.model_version, x.strategy): x for x in got.lines}
    stream = lines[("stream", "m1", "stored")]
    assert (stream.impressions, stream.clicks, stream.carts, stream.purchases) == (7, 2, 2, 1)
    assert stream.ctr == Rate.of(2, 7) and stream.purchase_rate == Rate.of(1, 7)
    service = lines[("service", "m1", "stored")]
    assert (service.impressions, service.clicks) == (2, 0)
    assert sum(x.impressions for x in got.hourly if x.source == "stream") == 7
    assert {x.hour for x in got.hourly} == {"2026-12-04T23:00Z", "2026-12-05T07:00Z", "2026-12-05T08:00Z"}
    assert got.newest_event == "2026-12-05T08:10:00Z"
    doc = got.to_json()
    assert doc["attribution"]["rate"] == pytest.approx(0.75)
    assert got.lag_seconds(dt.datetime(2026, 12, 5, 8, 11, tzinfo=dt.UTC)) == 60.0


def test_an_empty_lake_reports_nothing(tmp_path: Path) -> None:
    got = report(open_lake(str(tmp_path / "lake")))
    assert got.lines == [] and got.lag_seconds() is None and got.to_json()["attribution"]["rate"] is None


def test_the_report_as_prometheus_metrics(tmp_path: Path) -> None:
    from recpipe.report.prometheus import text

    shop_of_edges(tmp_path / "sink")
    lake = open_lake(str(tmp_path / "lake"))
    read_sink(open_recommendations(str(tmp_path / "sink")), lake)
    lines = text(report(lake)).decode().splitlines()
    stream = 'model_version="m1",source="stream",strategy="stored",variant=""'
    assert f"recpipe_online_impressions{{{stream}}} 7.0" in lines
    assert f"recpipe_online_clicks{{{stream}}} 2.0" in lines and f"recpipe_online_purchases{{{stream}}} 1.0" in lines
    assert 'recpipe_online_picks{outcome="attributed"} 3.0' in lines
    assert 'recpipe_online_picks{outcome="unknown_list"} 1.0' in lines
    assert any(line.startswith("recpipe_online_lag_seconds ") for line in lines)
