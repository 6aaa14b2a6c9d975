"""The transformation keeps one copy of each ``event_id``: a repeat in the same invocation or
in a later one (another ``recordId``: the producer sent it twice) is Dropped; Firehose retrying
an invocation (the same ``recordId``s) is not a repeat, and a failed invocation remembers nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import pytest

from recpipe.contracts.events import EnrichedRecord, Event, enriched
from recpipe.errors import ServiceError
from recpipe.streaming.transform import SeenIds, transform


class Echo:
    """Enriches with empty lists (what is tested here is which records reach it)."""

    def __init__(self) -> None:
        self.down = False
        self.got: list[str | None] = []

    def enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]:
        if self.down:
            raise ServiceError("the vector database is down")
        self.got += [e.event_id for e in events]
        return [enriched(e, [], None, [], recommendation_id="r", model_version="m", strategy="popular",
                         recommended_at="2026-12-05T00:00:00Z") for e in events]


def invocation(*records: tuple[str, str | None]) -> dict:
    def data(event_id: str | None) -> str:
        doc = {"session_id": "s", "event_time": "2026-12-05T00:00:00Z", "browse_history": []}
        return base64.b64encode(json.dumps(doc | ({"event_id": event_id} if event_id else {})).encode()).decode()
    return {"records": [{"recordId": rid, "data": data(eid)} for rid, eid in records]}


def results(answer: dict) -> list[str]:
    return [r["result"] for r in answer["records"]]


def test_repeated_event_ids_are_dropped_once_delivered_and_retries_are_not() -> None:
    enricher, seen = Echo(), SeenIds()
    first = transform(invocation(("1", "a"), ("2", "a"), ("3", None), ("4", None), ("5", "b")), enricher, seen)
    assert results(first) == ["Ok", "Dropped", "Ok", "Ok", "Ok"]  # records without an id are never repeats
    again = transform(invocation(("1", "a"), ("6", "b"), ("7", "c")), enricher, seen)  # 1 is a retry, 6 a repeat
    assert results(again) == ["Ok", "Dropped", "Ok"] and enricher.got == ["a", None, None, "b", "a", "c"]
    enriched_a = json.loads(base64.b64decode(first["records"][0]["data"]))
    assert enriched_a["event_id"] == "a" and next(iter(enriched_a)) == "event_id"


def test_a_failed_invocation_remembers_nothing() -> None:
    enricher, seen = Echo(), SeenIds()
    enricher.down = True
    with pytest.raises(ServiceError):
        transform(invocation(("1", "a")), enricher, seen)
    enricher.down = False
    assert results(transform(invocation(("2", "a")), enricher, seen)) == ["Ok"]


def test_the_memory_is_bounded() -> None:
    seen = SeenIds(size=2)
    seen.remember([("a", "1"), ("b", "2"), ("c", "3")])
    assert list(seen.ids) == ["b", "c"] and not seen.duplicate("a", "9") and seen.duplicate("b", "9")
