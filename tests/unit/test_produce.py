"""Simulated shoppers (``streaming.produce.Shoppers``) on a generated shop: what they put on
the stream is valid in the event contract (they build events without pydantic's checks, so
this is where those checks run), and their sessions walk the shop's transitions."""

from __future__ import annotations

from pathlib import Path

from recpipe.adapters import open_source
from recpipe.contracts.events import parse_event
from recpipe.source.generate import PRESETS
from recpipe.source.load import read_sidecar
from recpipe.source.pipeline import run as make_shop
from recpipe.streaming.produce import MAX_HISTORY, Shoppers


def test_every_simulated_event_is_valid_and_sessions_grow_one_click_at_a_time(tmp_path: Path) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'shop.db'}")
    sidecar = tmp_path / "shop.generator.json"
    make_shop(db, PRESETS["tiny"], sidecar=sidecar, replace=True)
    shoppers = Shoppers.from_source(db, read_sidecar(sidecar), seed=4)
    assert shoppers.preferences == "choice model"
    events = shoppers.next_events(3000)
    longest: dict[str, int] = {}
    for e in events:
        assert parse_event(e.to_bytes()) == e  # the contract's checks, on every event made
        codes = [b.product_code for b in e.browse_history]
        assert len(codes) == len(set(codes)) and 1 <= len(codes) <= MAX_HISTORY
        seen = longest.get(e.session_id, 0)
        assert len(codes) in (seen, seen + 1) or len(codes) == MAX_HISTORY  # one new click per event, at most
        longest[e.session_id] = len(codes)
    again = Shoppers.from_source(db, read_sidecar(sidecar), seed=4).next_events(3000)  # the same seed, the same walks
    assert [(e.session_id.split("-", 2)[2], e.browse_history) for e in again] == \
        [(e.session_id.split("-", 2)[2], e.browse_history) for e in events]
    assert again[0].session_id != events[0].session_id  # new sessions, not the first run's again


def test_every_simulated_event_has_its_own_id(tmp_path: Path) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'shop.db'}")
    make_shop(db, PRESETS["tiny"], sidecar=tmp_path / "shop.generator.json", replace=True)
    events = Shoppers.from_source(db, seed=1).next_events(2000) + Shoppers.from_source(db, seed=1).next_events(2000)
    ids = [e.event_id for e in events]
    assert all(ids) and len(set(ids)) == len(ids)  # two runs of one seed: the same walks, never the same ids


def test_a_replayed_event_without_an_id_is_named_by_its_bytes() -> None:
    from recpipe.streaming.produce import replay

    class Kept:
        url = "memory://"

        def __init__(self) -> None:
            self.records: list[tuple[str, bytes]] = []

        def put(self, records: list[tuple[str, bytes]]) -> list[str]:
            self.records += records
            return [str(i) for i in range(len(records))]

    line = b'{"session_id":"a","event_time":"2026-11-25T17:00:00Z","browse_history":[]}'
    given = b'{"event_id":"mine","session_id":"a","event_time":"2026-11-25T17:00:00Z","browse_history":[]}'
    first, second = Kept(), Kept()
    replay(first, [line, given, line + b" "], source="x")  # type: ignore[arg-type]
    replay(second, [line], source="x")  # type: ignore[arg-type]
    ids = [parse_event(data).event_id for _, data in first.records + second.records]
    assert ids[1] == "mine" and ids[0] == ids[2] == ids[3] and len(ids[0] or "") == 32
