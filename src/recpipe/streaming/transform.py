"""The Firehose data-transformation Lambda: ``handler(event, context)``.

Firehose sends ``{"invocationId", "deliveryStreamArn", "region", "records": [{"recordId",
"approximateArrivalTimestamp", "data" (base64), "kinesisRecordMetadata"?}]}`` and expects
``{"records": [{"recordId", "result", "data"}]}`` back: exactly one output per input record, in
order, ``result`` one of ``Ok`` / ``Dropped`` / ``ProcessingFailed``. Here:

- a record that is not an event (bad base64, not JSON, not an object, a missing or mistyped
  field, too large) or repeats a ``recordId`` is ``ProcessingFailed`` alone, its reason logged;
- a record whose ``event_id`` an earlier record already carried (in this invocation, or in an
  earlier one of this process with another ``recordId``: a producer's retry, not Firehose's)
  is ``Dropped``; the events dataset keeps one copy of each id whatever reaches it;
- every other record is ``Ok`` with the event enriched (``streaming.enrich``) as one line of
  JSON ending in a newline;
- an unreachable vector database (or no model yet) fails the whole invocation, so Firehose
  retries it; the response is kept under Firehose's 6 MB.

Settings come from the environment (``RECPIPE_ARTIFACTS_URL``, ``RECPIPE_VECTORS_URL``), read
once per Lambda environment.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import OrderedDict
from typing import Any

from pydantic_core import to_json

from recpipe.contracts.events import Event, parse_event
from recpipe.contracts.limits import FIREHOSE_LAMBDA_MAX_BYTES
from recpipe.errors import InputError
from recpipe.streaming.enrich import Enricher, LocalEnricher

log = logging.getLogger("recpipe.streaming.transform")
_enricher: Enricher | None = None
REMEMBERED_IDS = 200_000  # event ids a warm process remembers, to drop a producer's repeats


class SeenIds:
    """The ``recordId`` each recent ``event_id`` came in, oldest forgotten first. A repeat in
    another record is a duplicate; in the same record it is Firehose retrying an invocation."""

    def __init__(self, size: int = REMEMBERED_IDS) -> None:
        self.size = size
        self.ids: OrderedDict[str, str] = OrderedDict()

    def duplicate(self, event_id: str | None, record_id: str) -> bool:
        return event_id is not None and self.ids.get(event_id, record_id) != record_id

    def remember(self, pairs: list[tuple[str | None, str]]) -> None:
        for event_id, record_id in pairs:
            if event_id is not None:
                self.ids[event_id] = record_id
                self.ids.move_to_end(event_id)
        while len(self.ids) > self.size:
            self.ids.popitem(last=False)


_seen = SeenIds()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point."""
    global _enricher
    if _enricher is None:
        _enricher = enricher_from_settings()
    return transform(event, _enricher)


def enricher_from_settings(settings: Any = None) -> Enricher:
    """In-process (the model and pgvector), or with ``RECPIPE_INFERENCE_URL`` an inference
    service over HTTP (the seed's set-up)."""
    from recpipe.adapters import Backends
    from recpipe.config import load_settings
    from recpipe.inference.connections import Connections
    from recpipe.inference.model import ModelSource

    settings = settings or load_settings(env_file=None)
    if settings.inference_url:
        from recpipe.streaming.remote import RemoteEnricher

        return RemoteEnricher(settings.inference_url, api_key=settings.api_key)
    store, name = Backends(settings).artifacts()
    return LocalEnricher(ModelSource(store, name, check_every=settings.serve_reload_every),
                         Connections(Backends(settings).vectors(), ef_search=settings.serve_ef_search),
                         switch_every=settings.serve_switch_every)


def transform(event: dict[str, Any], enricher: Enricher, seen: SeenIds | None = None) -> dict[str, Any]:
    """The Lambda's answer for one invocation (Firehose's contract, nothing more)."""
    return transform_with_reasons(event, enricher, seen)[0]


def transform_with_reasons(event: dict[str, Any], enricher: Enricher, seen: SeenIds | None = None
                           ) -> tuple[dict[str, Any], dict[str, str]]:
    """The answer, and why each ProcessingFailed record failed (``recpipe stream deliver``
    writes the reasons into processing-failed/; Firehose itself only sees the result).
    ``seen``: the event ids of earlier invocations (default: this process's)."""
    seen = _seen if seen is None else seen
    reasons: dict[str, str] = {}
    records = event.get("records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise InputError("the invocation has no records list", hint="call it with a Firehose transformation event")
    results: list[dict[str, Any]] = []
    events: list[Event] = []
    slots: list[int] = []
    record_ids: set[str] = set()
    ids: list[tuple[str | None, str]] = []  # each event's id and record, remembered once enriched
    batch_ids: set[str] = set()
    for n, record in enumerate(records):
        record_id = str(record.get("recordId")) if isinstance(record, dict) else f"#{n}"
        try:
            if not isinstance(record, dict) or "recordId" not in record:
                raise InputError("the record has no recordId")
            if record_id in record_ids:
                raise InputError("the recordId repeats an earlier record of this invocation")
            record_ids.add(record_id)
            try:
                data = base64.b64decode(record.get("data") or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise InputError("the data is not base64") from None
            parsed = parse_event(data)
            if parsed.event_id is not None and (parsed.event_id in batch_ids
                                                or seen.duplicate(parsed.event_id, record_id)):
                log.info("record %s: Dropped: event_id %s was delivered already", record_id, parsed.event_id)
                results.append({"recordId": record_id, "result": "Dropped", "data": record.get("data") or ""})
                continue
            if parsed.event_id is not None:
                batch_ids.add(parsed.event_id)
            ids.append((parsed.event_id, record_id))
            events.append(parsed)
            slots.append(len(results))
            results.append({"recordId": record_id, "result": "Ok", "data": ""})
        except InputError as exc:
            log.warning("record %s: ProcessingFailed: %s", record_id, exc.message)
            reasons[record_id] = exc.message
            results.append(_failed(record_id, record))
    for slot, enriched in zip(slots, enricher.enrich(events), strict=True):
        # pydantic's serialiser (Rust): the same JSON as json.dumps, in a third of the time
        results[slot]["data"] = base64.b64encode(to_json(enriched) + b"\n").decode()
    _keep_under_limit(results, records, reasons)
    # only now, and only what is delivered: an invocation that failed is retried with the same ids
    ok = {r["recordId"] for r in results if r["result"] == "Ok"}
    seen.remember([pair for pair in ids if pair[1] in ok])
    return {"records": results}, reasons


def _failed(record_id: str, record: Any) -> dict[str, Any]:
    data = record.get("data") if isinstance(record, dict) and isinstance(record.get("data"), str) else ""
    return {"recordId": record_id, "result": "ProcessingFailed", "data": data}


def _keep_under_limit(results: list[dict[str, Any]], records: list[Any], reasons: dict[str, str]) -> None:
    """Turn the last Ok records into ProcessingFailed (their input kept) while the response
    would exceed Firehose's limit; Firehose then reports them under processing-failed/.
    Sizes are added up per record (ASCII JSON: the base64 data, the id, the fixed keys), not
    measured by serialising the whole answer on every invocation."""
    sizes = [_size(r) for r in results]
    total = sum(sizes) + len('{"records": []}')
    for i in range(len(results) - 1, -1, -1):
        if total <= FIREHOSE_LAMBDA_MAX_BYTES:
            return
        if results[i]["result"] == "Ok":
            reasons[results[i]["recordId"]] = f"the response would exceed Firehose's {FIREHOSE_LAMBDA_MAX_BYTES:,} bytes"
            results[i] = _failed(results[i]["recordId"], records[i])
            total += _size(results[i]) - sizes[i]


def _size(record: dict[str, Any]) -> int:
    """``len(json.dumps(record)) + 2`` (its separator) for an output record, without dumping it."""
    return (len('{"recordId": "", "result": "", "data": ""}, ') + len(json.dumps(record["recordId"])) - 2
            + len(record["result"]) + len(record["data"]))
