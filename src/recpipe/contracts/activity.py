"""The online datasets ``etl run`` builds from what the stream delivered and the service served.

``<lake>/events/date=YYYY-MM-DD/part-<hour>.parquet``: one row per product a session browsed,
carted or bought (``kind``), at the time of the first event that showed it, with the event's id
and the ``recommendation_id`` of the list it was picked from, if any. Events carry a session's
whole browse history so far, so a product appears in every later event of its session; the
dataset keeps it once per kind.

``<lake>/impressions/date=YYYY-MM-DD/part-<hour>.parquet``: one row per list shown, from the
stream (every enriched record is one) or from the service (``/recommendations`` answers, logged
under ``served/`` in the recommendations sink), with its model, strategy and the products in
order (a product's position is its index in ``items``, from 1).

Lines that cannot be read go to ``<lake>/events_quarantine/`` with the object, the line number,
the reason and the line itself. Each dataset's files are named after the delivery hour they came
from (``<hour>`` = ``YYYYMMDDHH`` of the objects' ``YYYY/MM/DD/HH/`` prefix, UTC): a run that
reads an hour again rewrites exactly its files, so a run is repeatable and an interrupted one is
finished by the next. ``events/_manifest.json`` names every file and the hours read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

EVENTS = "events"
IMPRESSIONS = "impressions"
EVENTS_QUARANTINE = "events_quarantine"
EVENTS_MANIFEST = f"{EVENTS}/_manifest.json"
PARTITION = "date"  # events by event_time's UTC date, impressions by served_at's
SERVED_PREFIX = "served/"  # the service's impression log in the recommendations sink

# (name, Arrow type, nullable), in this order; ``date`` is the Hive partition, not in the files.
EVENT_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("event_id", "string", False), ("session_id", "string", False), ("customer_number", "int32", True),
    ("event_time", "timestamp_us_utc", False), ("kind", "string", False), ("product_code", "string", False),
    ("quantity", "int32", False), ("recommendation_id", "string", True),
)
IMPRESSION_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("recommendation_id", "string", False), ("source", "string", False), ("served_at", "timestamp_us_utc", False),
    ("event_id", "string", True),  # the stream's: the event it answered (one impression per event)
    ("session_id", "string", True), ("customer_number", "int32", True), ("model_version", "string", False),
    ("strategy", "string", False), ("variant", "string", True), ("items", "list_string", False),
    ("similar_to", "string", True), ("similar_items", "list_string", False),
)
QUARANTINE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("object", "string", False), ("line", "int64", False), ("reason", "string", False),
    ("detail", "string", False), ("text", "string", False),
)
COLUMNS = {EVENTS: EVENT_COLUMNS, IMPRESSIONS: IMPRESSION_COLUMNS, EVENTS_QUARANTINE: QUARANTINE_COLUMNS}
TEXT_KEPT = 2000  # characters of a quarantined line kept

REASONS: dict[str, str] = {
    "not_json": "the line is not a JSON object",
    "not_an_event": "the line's event fields break the event contract",
    "not_enriched": "the line is an event but not as the stream delivers it (no recommendation_id, "
                    "model_version, strategy, recommended_at or lists)",
    "not_an_impression": "a line of the service's log misses a field of an impression",
}


def arrow_type(name: str) -> Any:
    """The Arrow type a column list above names (``string``, ``int32``, ``int64``,
    ``timestamp_us_utc``, ``list_string``)."""
    import pyarrow as pa

    return {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64(),
            "timestamp_us_utc": pa.timestamp("us", tz="UTC"), "list_string": pa.list_(pa.string())}[name]


def arrow_schema(dataset: str) -> Any:
    """The Arrow schema of ``events``, ``impressions`` or ``events_quarantine`` (``COLUMNS``)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, arrow_type(t), nullable=null) for name, t, null in COLUMNS[dataset]])


def data_file(dataset: str, day: str, hour_tag: str) -> str:
    """A dataset's file of one day (``YYYY-MM-DD``) from one delivery hour."""
    return f"{dataset}/{PARTITION}={day}/part-{hour_tag}.parquet"


def day_of(path: str) -> str:
    """The day (``YYYY-MM-DD``) of a ``data_file`` path."""
    return path.split("/")[1].removeprefix(f"{PARTITION}=")


class HourRead(BaseModel):
    """One delivery hour as the last run read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    objects: int
    digest: str  # of the objects' names: an hour with more objects is read again
    lines: int
    events: int  # rows it added to events (after keeping each product once per session and kind)
    impressions: int
    quarantined: int
    files: list[str]  # lake paths of its files, in the three datasets


class EventsManifest(BaseModel):
    """``<lake>/events/_manifest.json``: every hour read, and what it gave."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    updated_at: str
    engine: str
    sink: str
    hours: dict[str, HourRead]  # "YYYY/MM/DD/HH" (stream) or "served/YYYY/MM/DD/HH" (service)

    def files(self, dataset: str) -> list[str]:
        """Lake paths of ``dataset``'s files, sorted."""
        return sorted(f for h in self.hours.values() for f in h.files if f.startswith(dataset + "/"))

    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(h, k) for h in self.hours.values())
                for k in ("objects", "lines", "events", "impressions", "quarantined")}
