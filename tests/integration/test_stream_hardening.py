"""The streaming path when what it reads or keeps is hostile or damaged (issue: hardening): one
poisoned record fails alone; damaged or lost delivery state, a stream made anew, a second
delivery at once and a second delivery name on one sink are each refused in one line, never a
silent loss or duplicate."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from recpipe.adapters import open_recommendations, open_stream
from recpipe.errors import InputError
from recpipe.streaming.deliver import DamagedState, DeliveryOptions
from recpipe.streaming.enrich import Enricher
from recpipe.streaming.pipeline import run as deliver
from recpipe.streaming.pipeline import status
from recpipe.streaming.transform import enricher_from_settings, transform, transform_with_reasons
from tests.integration.test_streaming import delivered, event, invocation
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def enricher(stack: Stack) -> Enricher:
    return enricher_from_settings(stack.settings())


def good(n: int, tag: str) -> list[tuple[str, bytes]]:
    return [(f"{tag}-{i % 7}", json.dumps(event(f"{tag}-{i}", None, [("S10_1678", i % 2 == 0)], city="Nantes",
                                                country="France")).encode()) for i in range(n)]


POISON = [b"[" * 100_000, b'{"session_id": "p", "customer_number": ' + b"9" * 5_000 + b"}",
          json.dumps(event("nul", None, [("S10\x00_1678", True)])).encode()]


def run_delivery(enricher: Enricher, stream: Any, sink: Any, **options: Any) -> Any:
    return deliver(stream, sink, lambda e: transform_with_reasons(e, enricher),
                   DeliveryOptions(until_idle=0.3, buffer_seconds=0.1, **options))


def test_a_poisoned_record_fails_alone_in_the_handler(enricher: Enricher) -> None:
    payloads = [p for _, p in good(100, "h")]
    for at, poison in zip((10, 50, 90), POISON, strict=True):
        payloads.insert(at, poison)
    answer = transform(invocation(payloads), enricher)
    results = [r["result"] for r in answer["records"]]
    assert [i for i, r in enumerate(results) if r != "Ok"] == [10, 50, 90]
    _, reasons = transform_with_reasons(invocation(payloads), enricher)
    assert "nests too deeply" in reasons["0:11"] and "cannot be read" in reasons["0:51"]
    assert "product_code" in reasons["0:91"]


def test_poisoned_records_among_good_ones_do_not_stop_delivery(enricher: Enricher, tmp_path: Path) -> None:
    stream, sink = open_stream(str(tmp_path / "stream")), open_recommendations(str(tmp_path / "recs"))
    records = good(200, "g")
    stream.put([*records[:100], ("p-1", POISON[0]), ("p-2", POISON[1]), ("p-3", POISON[2]), *records[100:]])
    result = run_delivery(enricher, stream, sink)
    ok, failed = delivered(tmp_path / "recs")
    assert (result.counts["ok"], result.counts["failed"]) == (200, 3)
    assert sorted(r["session_id"] for r in ok) == sorted(f"g-{i}" for i in range(200))
    assert sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(POISON)


def stream_and_sink(tmp_path: Path) -> tuple[Any, Any]:
    return open_stream(str(tmp_path / "stream")), open_recommendations(str(tmp_path / "recs"))


def test_a_stream_made_anew_is_refused_not_skipped(enricher: Enricher, tmp_path: Path) -> None:
    stream, sink = stream_and_sink(tmp_path)
    stream.put(good(100, "a"))
    assert run_delivery(enricher, stream, sink).counts["ok"] == 100
    shutil.rmtree(tmp_path / "stream")  # deleted, then produced into again: fewer records than the positions
    stream = open_stream(str(tmp_path / "stream"))
    stream.put(good(400, "b"))
    with pytest.raises(InputError, match="made anew"):
        run_delivery(enricher, stream, sink)
    assert status(stream, sink)["stream_replaced"]
    again = run_delivery(enricher, stream, sink, reset=True)
    assert again.delivered == 400 and again.counts["ok"] == 500
    assert len(delivered(tmp_path / "recs")[0]) == 500  # nothing skipped, nothing twice


def test_a_truncated_stream_log_is_refused(enricher: Enricher, tmp_path: Path) -> None:
    stream, sink = stream_and_sink(tmp_path)
    stream.put(good(100, "t"))
    assert run_delivery(enricher, stream, sink).delivered == 100
    stream.put(good(100, "u"))
    stream._local.conn.close()  # type: ignore[attr-defined]  # as when the process ends
    for f in (tmp_path / "stream").iterdir():  # the log emptied while nothing ran: 100 records gone
        f.unlink() if f.name.startswith("log.sqlite-") else f.write_bytes(b"")
    with pytest.raises(InputError, match="made anew"):
        run_delivery(enricher, open_stream(str(tmp_path / "stream")), sink)


@pytest.mark.parametrize(("damage", "says"), [
    (None, "holds objects of delivery 'recpipe' but not its saved positions"),
    (b"{}", "expected the keys"),
    (b'{"positions": {"0": "1"', "not JSON"),
    (b"\x00\xff garbage", "not JSON"),
    (b'{"positions": {"0": 5}, "finished": [], "pending": null, "counts": {}}', "positions.0"),
    (b'{"positions": {}, "finished": [], "pending": null, "counts": {"ok": 1}}', "counts.failed"),
])
def test_damaged_or_lost_delivery_state_is_refused(enricher: Enricher, tmp_path: Path, damage: bytes | None,
                                                   says: str) -> None:
    stream, sink = stream_and_sink(tmp_path)
    stream.put(good(300, "s"))
    assert run_delivery(enricher, stream, sink).delivered == 300
    state = tmp_path / "recs" / "_recpipe" / "delivery" / "recpipe.json"
    if damage is None:
        state.unlink()
    else:
        state.write_bytes(damage)
    with pytest.raises(DamagedState, match=says) as raised:
        run_delivery(enricher, stream, sink)
    assert "\n" not in str(raised.value) and "--reset" in str(raised.value)
    assert len(delivered(tmp_path / "recs")[0]) == 300  # nothing written twice


def test_a_second_delivery_name_on_one_sink_is_refused(enricher: Enricher, tmp_path: Path) -> None:
    stream, sink = stream_and_sink(tmp_path)
    stream.put(good(50, "n"))
    assert run_delivery(enricher, stream, sink, name="demo").delivered == 50
    with pytest.raises(InputError, match="written by delivery 'demo'"):
        run_delivery(enricher, stream, sink)
    (tmp_path / "recs" / "_recpipe" / "delivery" / "demo.json").unlink()  # its objects still name it
    with pytest.raises(InputError, match="written by delivery 'demo'"):
        run_delivery(enricher, stream, sink)
    assert len(delivered(tmp_path / "recs")[0]) == 50


def test_two_deliveries_at_once_one_is_refused_and_counts_add_up(enricher: Enricher, tmp_path: Path) -> None:
    stream, sink = stream_and_sink(tmp_path)
    stream.put(good(3_000, "c"))
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(run_delivery(enricher, stream, sink,
                                        buffer_bytes=20_000))
        except InputError as exc:
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = [r for r in results if isinstance(r, InputError)]
    done = [r for r in results if not isinstance(r, InputError)]
    assert len(refused) == 1 and "already running" in str(refused[0]) and len(done) == 1
    assert done[0].delivered == done[0].counts["ok"] == 3_000
    st = status(stream, sink)
    assert st["counts"]["objects"] == st["objects"] + st["failed_objects"]
    assert len(delivered(tmp_path / "recs")[0]) == 3_000


def test_an_s3_sink_is_leased_to_one_delivery(enricher: Enricher, tmp_path: Path, s3_bucket: str) -> None:
    stream = open_stream(str(tmp_path / "stream"))
    sink = open_recommendations(f"s3://{s3_bucket}/recs")
    stream.put(good(20, "l"))
    lease = sink.hold("_recpipe/delivery/recpipe.lock", "delivery 'recpipe'")  # type: ignore[attr-defined]
    with lease, pytest.raises(InputError, match="already running"):
        run_delivery(enricher, stream, sink)
    assert run_delivery(enricher, stream, sink).delivered == 20  # released: the next one runs
    sink.write_bytes("_recpipe/delivery/recpipe.lock",  # type: ignore[attr-defined]
                     json.dumps({"holder": "a killed one", "expires": 0}).encode())
    assert run_delivery(enricher, stream, sink).delivered == 0  # an expired lease is taken over
