"""The report stage's entry point (``run``): the online figures from the lake's datasets, and
how far behind the newest event they are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from recpipe.adapters.base import Lake
from recpipe.contracts.activity import EVENTS, IMPRESSIONS
from recpipe.etl.online import read_manifest, read_online
from recpipe.report.attribution import Line, outcomes, overall


@dataclass(frozen=True)
class Report:
    lines: list[Line]  # every hour together, per source, model, strategy and variant
    hourly: list[Line]
    pointing: dict[str, int]
    read_at: str | None  # when `etl run` last read the sink (None: never)
    newest_event: str | None
    newest_impression: str | None

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
                "overall": [x.to_json() for x in self.lines], "hourly": [x.to_json() for x in self.hourly]}


def run(lake: Lake) -> Report:
    impressions = read_online(lake, IMPRESSIONS)
    events = read_online(lake, EVENTS, ["recommendation_id", "kind", "product_code", "event_time"])
    hourly, pointing = outcomes(impressions, events)
    manifest = read_manifest(lake)

    def newest(table: Any, column: str) -> str | None:
        if not len(table):
            return None
        import pyarrow.compute as pc

        value = pc.max(table[column]).as_py()
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    return Report(overall(hourly), hourly, pointing, manifest.updated_at if manifest else None,
                  newest(events, "event_time"), newest(impressions, "served_at"))
