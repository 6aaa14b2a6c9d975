"""The report stage's entry point (``run``): the online figures from the lake's datasets, and
how far behind the newest event they are."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from recpipe.adapters.base import Lake
from recpipe.contracts.activity import EVENTS, IMPRESSIONS
from recpipe.etl.online import read_manifest, read_online
from recpipe.report.attribution import Line, outcomes, overall
from recpipe.report.drift import DEFAULT_MARGIN, ctr_drift, product_drift


@dataclass(frozen=True)
class Report:
    lines: list[Line]  # every hour together, per source, model, strategy and variant
    hourly: list[Line]
    pointing: dict[str, int]
    read_at: str | None  # when `etl run` last read the sink (None: never)
    newest_event: str | None
    newest_impression: str | None
    drift: dict[str, Any] = field(default_factory=dict)  # ``report.drift``: click-through and products

    def lag_seconds(self, now: dt.datetime | None = None) -> float | None:
        """From the newest event the figures include to now: the delivery's buffer plus the
        time since ``etl run`` last read the sink."""
        if self.newest_event is None:
            return None
        return round(((now or dt.datetime.now(dt.UTC)) - dt.datetime.fromisoformat(self.newest_event)).total_seconds(), 1)

    def to_json(self) -> dict[str, Any]:
        rate = self.pointing["attributed"] / self.pointing["pointing"] if self.pointing["pointing"] else None
        return {"read_at": self.read_at, "newest_event": self.newest_event, "newest_impression": self.newest_impression,
                "lag_seconds": self.lag_seconds(), "attribution": self.pointing | {"rate": rate},
                "overall": [x.to_json() for x in self.lines], "hourly": [x.to_json() for x in self.hourly],
                "drift": self.drift}


def run(lake: Lake, *, margin: float = DEFAULT_MARGIN) -> Report:
    """``margin``: how far (relatively) the latest day's click-through may fall below the first
    day's before it is flagged (``report.drift``)."""
    impressions = read_online(lake, IMPRESSIONS)
    events = read_online(lake, EVENTS, ["recommendation_id", "kind", "product_code", "event_time"])
    hourly, pointing = outcomes(impressions, events)
    drift = {"margin": margin, "click_through": [x.to_json() for x in ctr_drift(hourly, margin)],
             "products": product_drift(_trained_on(lake), events)}
    manifest = read_manifest(lake)

    def newest(table: Any, column: str) -> str | None:
        if not len(table):
            return None
        import pyarrow.compute as pc

        value = pc.max(table[column]).as_py()
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    return Report(overall(hourly), hourly, pointing, manifest.updated_at if manifest else None,
                  newest(events, "event_time"), newest(impressions, "served_at"), drift)


def _trained_on(lake: Lake) -> Counter[str]:
    """How often each product is in the training set (empty: no training set published)."""
    import pyarrow.compute as pc

    from recpipe.adapters.scan import data_files, scan
    from recpipe.contracts.dataset import DATASET

    found: Counter[str] = Counter()
    try:
        for table in scan(lake, DATASET, ["productCode"], data_files(lake, DATASET)):
            found.update({v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(table["productCode"])
                          if v["values"].is_valid})
    except (FileNotFoundError, OSError, ValueError):
        return Counter()
    return found
