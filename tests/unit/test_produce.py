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
    assert [(e.session_id, e.browse_history) for e in again] == [(e.session_id, e.browse_history) for e in events]
