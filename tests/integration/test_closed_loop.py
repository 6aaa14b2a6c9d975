"""The closed loop for real: simulated shoppers shown the service's lists (in process and over
HTTP), their events through the transformation into the sink, `etl events` into the lake, and
`recpipe report`'s figures equal to what the simulation counted, every click attributed."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from recpipe.adapters import open_lake, open_recommendations, open_source
from recpipe.contracts.events import parse_event
from recpipe.errors import InputError
from recpipe.etl.online import run as read_sink
from recpipe.report.pipeline import run as report
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.streaming.closed_loop import ClosedLoop, HttpStorefront
from recpipe.streaming.produce import Shoppers
from recpipe.streaming.transform import SeenIds, enricher_from_settings, transform
from tests.support.delivered import put
from tests.support.stack import Stack

MODEL_STRATEGIES = {"session", "stored", "features"}


def shoppers(stack: Stack, seed: int) -> Shoppers:
    truth = generate_shop(ShopSpec(customers=300, products=60, seed=11)).params  # the stack's shop, again
    return Shoppers.from_source(open_source(f"sqlite:///{stack.root / 'source.db'}"), truth, seed=seed)


def test_shoppers_react_and_every_figure_is_accounted_for(stack: Stack, tmp_path: Path) -> None:
    from recpipe.api.service import Service
    from recpipe.api.storefront import ServiceStorefront

    settings = dataclasses.replace(stack.settings(), recommendations_url=str(tmp_path / "sink"))
    service = Service(settings)
    try:
        loop = ClosedLoop(shoppers(stack, seed=3), ServiceStorefront(service), k=10)
        events = loop.next_events(600)
    finally:
        service.close()  # writes the impression log
    served = {}
    for key in open_recommendations(str(tmp_path / "sink")).list_files("served/"):
        for line in (tmp_path / "sink" / key).read_text().splitlines():
            doc = json.loads(line)
            served[doc["recommendation_id"]] = doc
    clicks = 0
    for e in events:
        assert parse_event(e.to_bytes()) == e  # built without pydantic's checks: checked here
        newest = e.browse_history[-1]
        if newest.recommendation_id is not None:
            clicks += 1
            assert newest.product_code in served[newest.recommendation_id]["items"]  # picked from that very list
    summary = loop.summary()
    assert clicks == summary["model"]["clicks"] + summary["popular"]["clicks"] > 0
    assert set(summary["popular"]["strategies"]) == {"popular"}
    assert set(summary["model"]["strategies"]) <= MODEL_STRATEGIES
    assert len(served) == summary["model"]["impressions"] + summary["popular"]["impressions"] == 600
    for arm in summary.values():  # the ground truth's own list earns at least what was shown, give or take noise
        assert arm["ceiling_ctr"] >= arm["ctr"] - 0.05
    # through the transformation into the sink, then into the lake: the report counts what the simulation did
    enricher, out = enricher_from_settings(stack.settings()), []
    for start in range(0, len(events), 300):
        doc = {"records": [{"recordId": str(start + i), "data": base64.b64encode(e.to_bytes()).decode()}
                           for i, e in enumerate(events[start:start + 300])]}
        out += [base64.b64decode(r["data"]) for r in transform(doc, enricher, SeenIds())["records"]]
    hour = events[0].event_time.strftime("%Y/%m/%d/%H")
    put(tmp_path / "sink", hour, "recpipe-1-loop", [line.rstrip(b"\n") for line in out])
    lake = open_lake(str(tmp_path / "lake"))
    read_sink(open_recommendations(str(tmp_path / "sink")), lake)
    got = report(lake)
    assert got.pointing["attributed"] == got.pointing["pointing"] > 0  # every click names a list that held it
    service_lines = [x for x in got.lines if x.source == "service"]
    popular = [x for x in service_lines if x.strategy == "popular"]
    model = [x for x in service_lines if x.strategy in MODEL_STRATEGIES]
    assert sum(x.impressions for x in popular) == summary["popular"]["impressions"]
    assert sum(x.clicks for x in popular) == summary["popular"]["clicks"]
    assert sum(x.clicks for x in model) == summary["model"]["clicks"]
    assert sum(x.purchases for x in service_lines) == summary["model"]["purchases"] + summary["popular"]["purchases"]
    stream = [x for x in got.lines if x.source == "stream"]
    assert sum(x.impressions for x in stream) == 600 and sum(x.clicks for x in stream) == 0  # never shown


def test_the_storefront_over_http_is_the_same_service(stack: Stack, server: str) -> None:
    loop = ClosedLoop(shoppers(stack, seed=5), HttpStorefront(server), k=5, popular_share=0.5)
    events = loop.next_events(60)
    assert len(events) == 60 and sum(a["impressions"] for a in loop.summary().values()) == 60
    assert set(loop.summary()["popular"]["strategies"]) == {"popular"}


def test_a_shop_without_its_ground_truth_cannot_close_the_loop(stack: Stack) -> None:
    plain = Shoppers.from_source(open_source(f"sqlite:///{stack.root / 'source.db'}"))
    with pytest.raises(InputError, match="ground truth"):
        ClosedLoop(plain, HttpStorefront("http://127.0.0.1:1"))
