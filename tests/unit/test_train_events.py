"""Training learns from the lake's events: each product a known customer browsed, carted or
bought and did not rate is one more interaction, the newest in their history; everything
else is counted and left out; ``--no-events`` trains on the ratings alone."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recpipe.adapters import open_artifacts, open_lake, open_recommendations
from recpipe.etl.online import run as read_sink
from recpipe.source.generate import ShopSpec
from recpipe.training.events import EVENT_WEIGHTS, add_events, weights
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.training.reading import read_ratings
from tests.support.delivered import put, record
from tests.support.training import etl_lake

T0 = dt.datetime(2026, 12, 5, 8, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etl_lake(tmp_path_factory.mktemp("shop"), ShopSpec(customers=200, products=40, seed=3))


def test_events_become_the_newest_interactions_of_known_customers(lake: Path) -> None:
    data = read_ratings(open_lake(str(lake)))
    customers = data.users["customerNumber"].to_pylist()
    products = data.items["productCode"].to_pylist()
    rated = {(int(u), int(i)) for u, i in zip(data.user, data.item, strict=True)}
    c0 = customers[0]
    fresh = [i for i in range(len(products)) if (0, i) not in rated][:2]
    old = next(i for i in range(len(products)) if (0, i) in rated)
    rows = [  # customer, product, kind, minutes after T0
        (c0, products[fresh[0]], "browse", 5), (c0, products[fresh[0]], "cart", 9),  # one pair: cart, first seen at 5
        (c0, products[fresh[1]], "purchase", 1),
        (c0, products[old], "browse", 2),  # rated already
        (None, products[fresh[0]], "browse", 3),  # a visitor
        (999_999, products[fresh[0]], "browse", 3),  # not in the training dataset
        (c0, "NO-SUCH", "cart", 4),
    ]
    events = pa.table({"customer_number": pa.array([r[0] for r in rows], pa.int32()),
                       "product_code": [r[1] for r in rows], "kind": [r[2] for r in rows],
                       "event_time": pa.array([T0 + dt.timedelta(minutes=r[3]) for r in rows],
                                              pa.timestamp("us", tz="UTC"))})
    more, used = add_events(data, events, ["2026/12/05/08"])
    assert (used.added, used.by_kind, used.visitors, used.unknown_customers, used.unknown_products,
            used.already_rated) == (2, {"browse": 0, "cart": 1, "purchase": 1}, 1, 1, 1, 1)
    assert len(more) == len(data) + 2 and more.users is data.users
    assert list(zip(more.user[-2:].tolist(), more.item[-2:].tolist(), strict=True)) == [(0, fresh[1]), (0, fresh[0])]
    assert more.rating[-2:].tolist() == [5.0, 4.0]  # purchase, then cart (its first time was later)
    assert data.order is not None and more.order is not None
    assert more.order[-2:].min() > data.order.max()  # newer than every order
    same, nothing = add_events(data, events.slice(0, 0), [])
    assert same is data and nothing.added == 0


def test_train_reads_the_events_dataset_and_no_events_leaves_it(lake: Path, tmp_path: Path) -> None:
    shutil.copytree(lake, tmp_path / "lake")
    data = read_ratings(open_lake(str(tmp_path / "lake")))
    customers, products = data.users["customerNumber"].to_pylist(), data.items["productCode"].to_pylist()
    sink = tmp_path / "sink"
    put(sink, "2026/12/05/08", "recpipe-1-a", [
        record(f"e{n}", f"s{n}", "2026-12-05T08:00:00Z", [(products[(n * 7 + j) % len(products)], "cart", None)
                                                          for j in range(3)], f"r{n}", customer=customers[n])
        for n in range(30)])
    read_sink(open_recommendations(str(sink)), open_lake(str(tmp_path / "lake")))
    fast = FitOptions(max_epochs=2, patience=1)
    store, name = open_artifacts(str(tmp_path / "with"))
    with_events = train(open_lake(str(tmp_path / "lake")), store, name, TrainOptions(fit=fast, rating_baseline=False))
    used = with_events.training["events"]
    assert used["used"] and used["hours"] == 1 and used["last_hour"] == "2026/12/05/08" and used["rows"] == 90
    assert used["added"] + used["already_rated"] == 90 and used["added"] > 0
    assert with_events.counts["interactions"] == with_events.counts["ratings"] + used["added"]
    weighting = with_events.metrics["event_weights"]  # one model per weighting, the best by validation Recall@10
    assert set(weighting["validation_recall_at_10"]) == set(EVENT_WEIGHTS) and weighting["chosen"] in EVENT_WEIGHTS
    best = max(weighting["validation_recall_at_10"].values())
    assert weighting["validation_recall_at_10"][weighting["chosen"]] == best
    assert {h["phase"] for h in with_events.training["history"]} == {f"retrieval, events {weighting['chosen']}"}
    store, name = open_artifacts(str(tmp_path / "without"))
    without = train(open_lake(str(tmp_path / "lake")), store, name,
                    TrainOptions(fit=fast, rating_baseline=False, events=False))
    assert without.training["events"] == {"used": False, "why": "--no-events"}
    assert without.counts["interactions"] == without.counts["ratings"] and "event_weights" not in without.metrics
    assert np.isfinite(with_events.metrics["recall_at_10"])


def test_a_rating_weighs_one_and_an_event_its_kinds_weight() -> None:
    kind = np.array([-1, 0, 1, 2, -1], np.int8)
    assert weights(kind, (0.3, 0.6, 1.0)).tolist() == pytest.approx([1.0, 0.3, 0.6, 1.0, 1.0])
    assert weights(None, (1.0, 1.0, 1.0)) is None and weights(kind, None) is None
