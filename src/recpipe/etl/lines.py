"""One delivered or served line as rows of the online datasets (``recpipe.contracts.activity``).

Pure: bytes in, rows out, the same function on both engines (DuckDB's runs it in process,
Spark's in its Python workers), so that the two read every line alike. ``rows_of_object``
turns one object of the recommendations sink into ``Candidate`` rows: events, impressions and
quarantined lines, each tagged with the delivery hour it came from.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from pydantic import ValidationError
from pydantic_core import from_json

from recpipe.contracts.activity import REASONS, SERVED_PREFIX, TEXT_KEPT
from recpipe.contracts.events import DeliveredRecord, Event

_EVENT_FIELDS = set(Event.model_fields)
ENRICHED_KEYS = tuple(f for f, info in DeliveredRecord.model_fields.items()  # what the stream adds (always)
                      if f not in _EVENT_FIELDS and info.is_required())
_DERIVED = uuid.UUID("9d3b1a52-7c4e-4f0a-8e61-2a5f4b7c9e13")  # names delivered events that came without an id


class Candidate(NamedTuple):
    """A row before the datasets keep it: ``row_type`` is ``event``, ``impression`` or ``bad``."""

    delivery_hour: str
    row_type: str
    event_id: str | None = None
    session_id: str | None = None
    customer_number: int | None = None
    event_time: dt.datetime | None = None  # events: the event's; impressions: served_at
    kind: str | None = None
    product_code: str | None = None
    quantity: int | None = None
    recommendation_id: str | None = None
    source: str | None = None
    model_version: str | None = None
    strategy: str | None = None
    variant: str | None = None
    items: list[str] | None = None
    similar_to: str | None = None
    similar_items: list[str] | None = None
    object: str | None = None
    line: int | None = None
    reason: str | None = None
    detail: str | None = None
    text: str | None = None


# Each field's type (``contracts.activity.arrow_type``): a string unless named here.
CANDIDATE_TYPES = {name: "string" for name in Candidate._fields} | {
    "customer_number": "int32", "event_time": "timestamp_us_utc", "quantity": "int32", "items": "list_string",
    "similar_items": "list_string", "line": "int64"}


class BadLine(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")  # a bug here, not in the line
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def hour_of(key: str) -> str | None:
    """The delivery hour of an object of the sink: ``YYYY/MM/DD/HH`` (the stream's) or
    ``served/YYYY/MM/DD/HH`` (the service's); None for anything else (failed records, state)."""
    parts = key.split("/")
    served = parts[0] == SERVED_PREFIX.rstrip("/")
    head = parts[1:5] if served else parts[:4]
    if len(parts) != (6 if served else 5) or [len(p) for p in head] != [4, 2, 2, 2] \
            or not all(p.isdigit() for p in head):
        return None
    return "/".join(parts[:5] if served else parts[:4])


def decompress(data: bytes, key: str) -> bytes:
    """An object's bytes, gunzipped if they are gzip (Firehose's GZIP compression), by their magic bytes."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadLine("not_json", f"the gzip object {key} cannot be read: {exc}") from None
    return data


def rows_of_object(key: str, data: bytes) -> Iterator[Candidate]:
    """Every row of one object; a line that cannot be read is a ``bad`` row, never an error."""
    hour = hour_of(key)
    if hour is None:
        return
    try:
        text = decompress(data, key)
    except BadLine as bad:
        yield Candidate(hour, "bad", object=key, line=0, reason=bad.reason, detail=bad.detail, text="")
        return
    served = hour.startswith(SERVED_PREFIX)
    for number, raw in enumerate(text.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            if served:
                yield served_row(hour, raw)
            else:
                yield from delivered_rows(hour, raw)
        except BadLine as bad:
            yield Candidate(hour, "bad", object=key, line=number, reason=bad.reason, detail=bad.detail[:500],
                            text=raw[:TEXT_KEPT].decode("utf-8", "replace"))


def _object(raw: bytes) -> dict[str, Any]:
    try:
        doc = from_json(raw)
    except ValueError as exc:
        raise BadLine("not_json", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadLine("not_json", f"a JSON {type(doc).__name__}, not an object")
    return doc


def _time(value: Any, field: str, reason: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise BadLine(reason, f"{field}: {str(value)[:60]!r} is not an ISO 8601 time with a time zone")
    return t.astimezone(dt.UTC)


def _event_id(event: Event) -> str:
    """The event's id, or one derived from its fields (the same event, the same id)."""
    if event.event_id:
        return event.event_id
    fields = event.model_dump(mode="json", include=_EVENT_FIELDS)  # a DeliveredRecord: its event's part
    return uuid.uuid5(_DERIVED, json.dumps(fields, separators=(",", ":"))).hex


def _ids(items: Any, field: str, reason: str) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
        raise BadLine(reason, f"{field}: not a list of {{id, score}}")
    return [i["id"] for i in items]


def _text(doc: dict[str, Any], field: str, reason: str, *, optional: bool = False) -> str | None:
    value = doc.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise BadLine(reason, f"{field}: missing or not a non-empty text")
    return value


def delivered_rows(hour: str, raw: bytes) -> list[Candidate]:
    """An enriched record: its event as one row per browsed product and its lists as one impression."""
    try:  # the fast path: a well-formed line, parsed and checked by pydantic in one pass (1.17x)
        d = DeliveredRecord.model_validate_json(raw)
    except ValidationError:
        return _delivered_rows(hour, raw)  # say why, precisely (or take what is valid but unusual)
    similar, similar_to = d.similar_items, d.similar_items["product_code"]
    if similar_to is not None and (not similar_to or "\x00" in similar_to):
        return _delivered_rows(hour, raw)
    return _rows(hour, d, _event_id(d), _time(d.recommended_at, "recommended_at", "not_enriched"), d.recommendation_id,
                 d.model_version, d.strategy, [i["id"] for i in d.recommended_items],
                 similar_to, [i["id"] for i in similar["similar_items"]], d.variant)


def _delivered_rows(hour: str, raw: bytes) -> list[Candidate]:
    doc = _object(raw)
    served = {k: doc.pop(k) for k in ENRICHED_KEYS if k in doc}
    variant = _text(doc, "variant", "not_enriched", optional=True)
    doc.pop("variant", None)
    try:
        event = Event.model_validate(doc)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise BadLine("not_an_event", f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg'].lower()}") from None
    if len(served) < len(ENRICHED_KEYS):
        missing = ", ".join(k for k in ENRICHED_KEYS if k not in served)
        raise BadLine("not_enriched", f"no {missing}")
    similar = served["similar_items"]
    if not isinstance(similar, dict):
        raise BadLine("not_enriched", "similar_items: not an object")
    recommendation = _text(served, "recommendation_id", "not_enriched")
    return _rows(hour, event, _event_id(event), _time(served["recommended_at"], "recommended_at", "not_enriched"),
                 recommendation,
                 _text(served, "model_version", "not_enriched"), _text(served, "strategy", "not_enriched"),
                 _ids(served["recommended_items"], "recommended_items", "not_enriched"),
                 _text(similar, "product_code", "not_enriched", optional=True),
                 _ids(similar.get("similar_items"), "similar_items.similar_items", "not_enriched"), variant)


def _rows(hour: str, event: Event, event_id: str, served_at: dt.datetime, recommendation: str | None,
          model: str | None, strategy: str | None, items: list[str], similar_to: str | None,
          similar: list[str], variant: str | None = None) -> list[Candidate]:
    """The impression and the event rows of one delivered record."""
    impression = Candidate(
        hour, "impression", event_id=event_id, session_id=event.session_id, customer_number=event.customer_number,
        event_time=served_at, recommendation_id=recommendation, source="stream", model_version=model,
        strategy=strategy, variant=variant, items=items, similar_to=similar_to, similar_items=similar)
    at = event.event_time.astimezone(dt.UTC)
    return [impression, *(Candidate(hour, "event", event_id=event_id, session_id=event.session_id,
                                    customer_number=event.customer_number, event_time=at, kind=b.kind,
                                    product_code=b.product_code, quantity=b.quantity,
                                    recommendation_id=b.recommendation_id) for b in event.browse_history)]


def served_row(hour: str, raw: bytes) -> Candidate:
    """One line of the service's impression log (``api.impressions``)."""
    doc = _object(raw)
    reason = "not_an_impression"
    customer = doc.get("customer_number")
    if customer is not None and (not isinstance(customer, int) or isinstance(customer, bool)
                                 or not 0 <= customer < 2**31):
        raise BadLine(reason, "customer_number: not a customer number")
    items = doc.get("items")
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadLine(reason, "items: not a list of product codes")
    return Candidate(hour, "impression", session_id=_text(doc, "session_id", reason, optional=True),
                     customer_number=customer, event_time=_time(doc.get("served_at"), "served_at", reason),
                     recommendation_id=_text(doc, "recommendation_id", reason), source="service",
                     model_version=_text(doc, "model_version", reason), strategy=_text(doc, "strategy", reason),
                     variant=_text(doc, "variant", reason, optional=True), items=items, similar_items=[])
