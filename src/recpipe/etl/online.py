"""The online datasets (``recpipe.contracts.activity``): what the stream delivered and the service
served, read from the recommendations sink into ``events``, ``impressions`` and their quarantine.

``run`` reads only the hours that are new or gained objects since the last run (its manifest
keeps a digest per hour), a bounded number of objects at a time, and for each such hour rewrites
exactly that hour's files. Rows are kept once: an event row per session, product and kind (the
first time it shows), an impression per ``recommendation_id``, within the hours read and against
the rows already in the dataset within a day of theirs. The manifest is written after each
batch of hours: an interrupted run loses nothing, and the next run reads those hours again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, Protocol

from recpipe.adapters.base import Lake
from recpipe.contracts.activity import (
    EVENTS,
    EVENTS_MANIFEST,
    EVENTS_QUARANTINE,
    IMPRESSIONS,
    EventsManifest,
    HourRead,
    arrow_schema,
    data_file,
    day_of,
)
from recpipe.contracts.dataset import ENGINES
from recpipe.errors import InputError
from recpipe.etl.candidates import parse_in_processes
from recpipe.etl.lines import hour_of
from recpipe.progress import SILENT, Progress


class Tables(NamedTuple):
    events: Any  # pyarrow.Table of KEEP_EVENTS
    impressions: Any
    bad: Any
    lines: Any  # delivery_hour, lines


BATCH_OBJECTS = 2_000  # objects read per batch (hours are never split): bounds memory
LOCK = "_recpipe/events.lock"

# What both engines run on the table ``candidates`` (``etl.lines.Candidate``) and the
# keys already kept, ``kept_events`` and ``kept_impressions``. NULLS LAST: Spark sorts NULLs first.
KEEP_EVENTS = """
SELECT delivery_hour, event_id, session_id, customer_number, event_time, kind, product_code, quantity,
       recommendation_id
FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY session_id, product_code, kind
                                     ORDER BY event_time, event_id, delivery_hour, quantity,
                                              recommendation_id NULLS LAST) AS n
      FROM candidates c WHERE row_type = 'event') c
WHERE n = 1 AND NOT EXISTS (SELECT 1 FROM kept_events k WHERE k.session_id = c.session_id
                            AND k.product_code = c.product_code AND k.kind = c.kind)
"""
KEEP_IMPRESSIONS = """
SELECT delivery_hour, recommendation_id, source, event_time AS served_at, event_id, session_id, customer_number,
       model_version, strategy, variant, items, similar_to, similar_items
FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY COALESCE(event_id, recommendation_id)
                                     ORDER BY event_time, delivery_hour, recommendation_id, source,
                                              session_id NULLS LAST, model_version) AS n
      FROM candidates c WHERE row_type = 'impression') c
WHERE n = 1 AND NOT EXISTS (SELECT 1 FROM kept_impressions k WHERE k.recommendation_id = c.recommendation_id)
      AND NOT EXISTS (SELECT 1 FROM kept_impressions k WHERE k.event_id = c.event_id)
"""
BAD_LINES = """
SELECT delivery_hour, object, line, reason, detail, text FROM candidates WHERE row_type = 'bad'
"""
LINES = """
SELECT delivery_hour, SUM(CASE WHEN row_type = 'event' THEN 0 ELSE 1 END) AS lines
FROM candidates GROUP BY delivery_hour
"""
DAYS = """
SELECT DISTINCT CAST(CAST(event_time AS DATE) AS STRING) AS day FROM candidates WHERE event_time IS NOT NULL
"""


def run(sink: Lake, lake: Lake, *, engine: str = "duckdb", spark: Any = None, batch_objects: int = BATCH_OBJECTS,
        progress: Progress = SILENT) -> EventsManifest:
    """Read the sink's new hours into the lake's online datasets; return the manifest."""
    if engine not in ENGINES:
        raise InputError(f"unknown ETL engine {engine!r}", hint=f"use one of: {', '.join(ENGINES)}")
    lake.check_writable()
    with lake.hold(LOCK, "an events ETL"):
        old = read_manifest(lake)
        hours: dict[str, list[str]] = {}
        for key in sink.list_files():
            hour = hour_of(key)
            if hour is not None:
                hours.setdefault(hour, []).append(key)
        todo = [h for h in sorted(hours) if _changed(old, h, hours[h])]
        manifest = old or EventsManifest(updated_at="", engine=engine, sink=sink.url, hours={})
        if todo:
            progress.start("objects", sum(len(hours[h]) for h in todo))
        for batch in _batches(todo, hours, batch_objects):
            started = time.perf_counter()
            keys = [key for h in batch for key in hours[h]]
            if engine == "duckdb":  # each object read as it is parsed
                keeper: Keeper = DuckDBKeeper((key, _read(sink, key)) for key in keys)
            else:
                from recpipe.etl.spark_engine import SparkKeeper

                keeper = SparkKeeper(spark, [(key, _read(sink, key)) for key in keys])
            try:
                tables = keeper.keep(*_kept(lake, manifest, batch, keeper.days()))
            finally:
                keeper.close()
            reads = _write(lake, manifest, batch, hours, tables)
            manifest = EventsManifest(updated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                      engine=engine, sink=sink.url, hours={**manifest.hours, **reads})
            lake.write_bytes(EVENTS_MANIFEST, manifest.model_dump_json(indent=1).encode())
            progress.advance("objects", len(keys))
            progress.status(f"{len(batch)} hour(s) in {time.perf_counter() - started:.1f} s")
        return manifest


def read_manifest(lake: Lake) -> EventsManifest | None:
    doc = lake.read_json(EVENTS_MANIFEST)
    if doc is None:
        return None
    try:
        return EventsManifest.model_validate(doc)
    except ValueError as exc:
        raise InputError(f"{lake.location(EVENTS_MANIFEST)} is not an events manifest: {str(exc).splitlines()[0]}",
                         hint="move it aside and run `recpipe etl events` to read every hour again") from None


def read_online(lake: Lake, dataset: str, columns: list[str] | None = None) -> Any:
    """Every row of ``events``, ``impressions`` or ``events_quarantine`` as one Arrow table
    (empty with the contract's schema when nothing was read yet), with its ``date``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(dataset)
    manifest = read_manifest(lake)
    parts = []
    for path in manifest.files(dataset) if manifest else []:
        data = lake.read_bytes(path)
        if data is None:
            raise InputError(f"{lake.location(path)} is missing, though {EVENTS_MANIFEST} lists it",
                             hint="run `recpipe etl events` to write it again")
        part = pq.read_table(io.BytesIO(data), columns=columns)
        day = day_of(path)
        parts.append(part.append_column("date", pa.array([dt.date.fromisoformat(day)] * len(part), pa.date32())))
    if not parts:
        empty = schema.empty_table()
        empty = empty.select(columns) if columns else empty
        return empty.append_column("date", pa.array([], pa.date32()))
    return pa.concat_tables(parts)


def _changed(old: EventsManifest | None, hour: str, keys: list[str]) -> bool:
    """New, or objects were added to it (an hour that lost objects, say to the sink's expiry, is kept as read)."""
    if old is None or hour not in old.hours:
        return True
    seen = old.hours[hour]
    return _digest(keys) != seen.digest and len(keys) >= seen.objects


def _digest(keys: list[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def _batches(todo: list[str], hours: dict[str, list[str]], most: int) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for hour in todo:
        if batch and size + len(hours[hour]) > most:
            yield batch
            batch, size = [], 0
        batch.append(hour)
        size += len(hours[hour])
    if batch:
        yield batch


def _read(sink: Lake, key: str) -> bytes:
    data = sink.read_bytes(key)
    return b"" if data is None else data  # gone since it was listed (the sink's expiry): nothing to read


def _tag(hour: str) -> str:
    return hour.replace("served/", "served-").replace("/", "")


def _kept(lake: Lake, manifest: EventsManifest, batch: list[str], days: set[str]) -> tuple[Any, Any]:
    """The keys the datasets hold already on the batch's dates and a day either side of each,
    outside the hours the batch rewrites."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    window = {str(dt.date.fromisoformat(d) + dt.timedelta(days=shift)) for d in days for shift in (-1, 0, 1)}
    rewritten = set(batch)
    parts: dict[str, list[Any]] = {EVENTS: [], IMPRESSIONS: []}
    columns = {EVENTS: ["session_id", "product_code", "kind"], IMPRESSIONS: ["recommendation_id", "event_id"]}
    for hour, read in manifest.hours.items():
        if hour in rewritten:
            continue
        for path in read.files:
            dataset, day = path.split("/")[0], day_of(path)
            if dataset in parts and day in window:
                data = lake.read_bytes(path)
                if data is not None:
                    parts[dataset].append(pq.read_table(io.BytesIO(data), columns=columns[dataset]))
    out = []
    for dataset in (EVENTS, IMPRESSIONS):
        schema = pa.schema([pa.field(c, pa.string()) for c in columns[dataset]])
        out.append(pa.concat_tables(parts[dataset]) if parts[dataset] else schema.empty_table())
    return out[0], out[1]


class Keeper(Protocol):
    """An engine's part: read a batch's objects into ``candidates``, say their days, keep rows."""

    def days(self) -> set[str]:
        """The UTC dates (YYYY-MM-DD) of the candidates' event and serving times."""
        ...

    def keep(self, kept_events: Any, kept_impressions: Any) -> Tables:
        """``KEEP_EVENTS``, ``KEEP_IMPRESSIONS``, ``BAD_LINES`` and ``LINES`` as Arrow tables."""
        ...

    def close(self) -> None: ...


class DuckDBKeeper:
    def __init__(self, objects: Iterable[tuple[str, bytes]], *, processes: int | None = None) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.register("candidates", parse_in_processes(objects, processes))

    def days(self) -> set[str]:
        return {r[0] for r in self.con.execute(DAYS).fetchall()}

    def keep(self, kept_events: Any, kept_impressions: Any) -> Tables:
        self.con.register("kept_events", kept_events)
        self.con.register("kept_impressions", kept_impressions)
        events, impressions, bad, lines = (self.con.sql(q).to_arrow_table()
                                           for q in (KEEP_EVENTS, KEEP_IMPRESSIONS, BAD_LINES, LINES))
        return Tables(events, impressions, bad, lines)

    def close(self) -> None:
        self.con.close()


def _write(lake: Lake, manifest: EventsManifest, batch: list[str], hours: dict[str, list[str]],
           tables: Tables) -> dict[str, HourRead]:
    """Each hour's files: one per dataset and date, named after the hour; a file the hour had
    before and no longer fills is written empty (nothing else removes a file)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    events, impressions, bad, lines = tables
    line_counts = dict(zip(lines["delivery_hour"].to_pylist(), lines["lines"].to_pylist(), strict=True))
    layout = ((EVENTS, events, "event_time"), (IMPRESSIONS, impressions, "served_at"), (EVENTS_QUARANTINE, bad, None))
    reads = {}
    for hour in batch:
        files: dict[str, Any] = {}
        counts = {}
        for dataset, table, time_column in layout:
            schema = arrow_schema(dataset)
            mine = table.filter(pc.equal(table["delivery_hour"], hour))
            counts[dataset] = len(mine)
            if time_column is None:  # bad lines: by the hour they were delivered in
                days = pa.array([hour[-13:-3].replace("/", "-")] * len(mine), pa.string())
            else:
                days = pc.strftime(mine[time_column], format="%Y-%m-%d", locale="C") if len(mine) else pa.array([], pa.string())
            for day in sorted(set(days.to_pylist())):
                rows = mine.filter(pc.equal(days, day)).select(schema.names).cast(schema)
                files[data_file(dataset, day, _tag(hour))] = rows
        before = manifest.hours[hour].files if hour in manifest.hours else []
        for path in before:
            if path not in files:
                files[path] = arrow_schema(path.split("/")[0]).empty_table()
        for path, rows in sorted(files.items()):
            buffer = io.BytesIO()
            pq.write_table(rows.sort_by(rows.schema.names[0]) if len(rows) else rows, buffer, compression="snappy")
            lake.write_bytes(path, buffer.getvalue())
        reads[hour] = HourRead(objects=len(hours[hour]), digest=_digest(hours[hour]),
                               lines=int(line_counts.get(hour) or 0), events=counts[EVENTS],
                               impressions=counts[IMPRESSIONS], quarantined=counts[EVENTS_QUARANTINE],
                               files=sorted(files))
    return reads
