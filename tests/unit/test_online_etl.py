"""The online datasets from a local sink, on the DuckDB engine: one row per session, product and
kind; one impression per event and per answer; bad lines set aside with their reason; an
incremental run reads only what is new and gives what one run over everything gives; an
interrupted run is finished by the next."""

from __future__ import annotations

from pathlib import Path

import pytest

from recpipe.adapters import open_lake, open_recommendations
from recpipe.contracts.activity import EVENTS, EVENTS_QUARANTINE, IMPRESSIONS
from recpipe.errors import ServiceError
from recpipe.etl.online import read_online, run
from tests.support.delivered import put, record, shop_of_edges


def rows(lake, dataset: str) -> list[tuple]:
    table = read_online(lake, dataset)
    return sorted(tuple(str(v) for v in r.values()) for r in table.to_pylist())


def test_every_line_becomes_rows_once_or_a_reason(tmp_path: Path) -> None:
    shop_of_edges(tmp_path / "sink")
    lake = open_lake(str(tmp_path / "lake"))
    manifest = run(open_recommendations(str(tmp_path / "sink")), lake)
    events = read_online(lake, EVENTS).to_pylist()
    kept = sorted((e["session_id"], e["product_code"], e["kind"], e["event_id"], e["recommendation_id"])
                  for e in events)
    seed_id = next(e["event_id"] for e in events if e["session_id"] == "seed")
    assert kept == [("s0", "S4", "browse", "e0", None),
                    ("s1", "S1", "browse", "e1", "r-0"), ("s1", "S2", "cart", "e2", "r-1"),
                    ("s1", "S2", "purchase", "e3", "r-1"),
                    ("s5", "S1", "cart", "e5", "r-5"), ("s5", "S2", "browse", "e4", None),  # the earlier event
                    ("seed", "S3", "browse", seed_id, None)]
    assert len(seed_id) == 32
    late = next(e for e in events if e["session_id"] == "s0")
    assert str(late["date"]) == "2026-12-04"  # partitioned by the event's own date
    impressions = read_online(lake, IMPRESSIONS).to_pylist()
    assert sorted(i["recommendation_id"] for i in impressions) == [
        "q-1", "q-2", "r-1", "r-2", "r-3", "r-4", "r-5", "r-6", "r-8"]  # r-2b answered a repeat
    q2 = next(i for i in impressions if i["recommendation_id"] == "q-2")
    assert (q2["source"], q2["items"], q2["session_id"], q2["customer_number"]) == ("service", ["S2"], "s5", None)
    r1 = next(i for i in impressions if i["recommendation_id"] == "r-1")
    assert (r1["source"], r1["items"], r1["similar_to"], r1["similar_items"]) == ("stream", ["S1", "S2", "S3"],
                                                                                  "S1", ["S9"])
    bad = sorted((b["object"].split("/")[0], b["line"], b["reason"]) for b in read_online(lake, EVENTS_QUARANTINE).to_pylist())
    assert bad == [("2026", 4, "not_json"), ("2026", 5, "not_json"), ("2026", 6, "not_an_event"),
                   ("2026", 7, "not_enriched"), ("served", 3, "not_an_impression")]
    assert manifest.totals() == {"objects": 3, "lines": 15, "events": 7, "impressions": 9, "quarantined": 5}
    assert set(manifest.hours) == {"2026/12/05/07", "2026/12/05/08", "served/2026/12/05/08"}  # failed records left out


def test_runs_are_incremental_and_equal_one_run_over_everything(tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    shop_of_edges(sink)
    lake = open_lake(str(tmp_path / "lake"))
    first = run(open_recommendations(str(sink)), lake)
    assert run(open_recommendations(str(sink)), lake).hours == first.hours  # nothing new: nothing read
    # later: a new hour repeating s1's history, and a late object in an hour already read
    put(sink, "2026/12/05/09", "recpipe-1-c", [record("e6", "s1", "2026-12-05T09:00:00Z",
                                                      [("S1", "browse", "r-0"), ("S6", "browse", "r-3")], "r-9")])
    put(sink, "2026/12/05/07", "recpipe-1-late", [record("e8", "s8", "2026-12-05T07:30:00Z",
                                                         [("S2", "browse", None)], "r-10"),
                                                  record("e2", "s1", "2026-12-05T07:00:05Z",
                                                         [("S1", "browse", "r-0"), ("S2", "cart", "r-1")], "r-2c")])
    again = run(open_recommendations(str(sink)), lake)
    assert again.hours["2026/12/05/08"] == first.hours["2026/12/05/08"]  # untouched
    assert again.hours["2026/12/05/07"].objects == 2
    once = open_lake(str(tmp_path / "once"))
    run(open_recommendations(str(sink)), once)
    for dataset in (EVENTS, IMPRESSIONS, EVENTS_QUARANTINE):
        assert rows(lake, dataset) == rows(once, dataset), dataset
    assert ("s1", "S6") in {(e["session_id"], e["product_code"]) for e in read_online(lake, EVENTS).to_pylist()}
    assert len(read_online(lake, EVENTS)) == 9


def test_an_interrupted_run_is_finished_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = tmp_path / "sink"
    shop_of_edges(sink)
    lake = open_lake(str(tmp_path / "lake"))
    real = type(lake).write_bytes
    writes = []

    def failing(self, relpath: str, data: bytes) -> None:
        writes.append(relpath)
        if len(writes) == 6:
            raise ServiceError("the disk is full")
        real(self, relpath, data)

    monkeypatch.setattr(type(lake), "write_bytes", failing)
    with pytest.raises(ServiceError):
        run(open_recommendations(str(sink)), lake, batch_objects=1)  # a batch per hour: one was published
    monkeypatch.undo()
    run(open_recommendations(str(sink)), lake)
    once = open_lake(str(tmp_path / "once"))
    run(open_recommendations(str(sink)), once)
    for dataset in (EVENTS, IMPRESSIONS, EVENTS_QUARANTINE):
        assert rows(lake, dataset) == rows(once, dataset), dataset


def test_nothing_read_yet_is_an_empty_dataset_with_its_columns(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    assert read_online(lake, EVENTS).num_rows == 0 and "recommendation_id" in read_online(lake, EVENTS).column_names
    assert run(open_recommendations(str(tmp_path / "empty")), lake).hours == {}


def test_a_large_batch_is_parsed_by_one_process_per_core_into_the_same_rows(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from recpipe.etl import candidates as online

    shop_of_edges(tmp_path / "sink")
    sink = open_recommendations(str(tmp_path / "sink"))
    objects = [(key, sink.read_bytes(key) or b"") for key in sink.list_files()]
    alone = online.candidates_table(objects)
    monkeypatch.setattr(online, "PARALLEL_FROM_BYTES", 0)
    assert online.parse_in_processes(iter(objects), processes=2).equals(alone)
    assert online.parse_in_processes(iter(objects), processes=1).equals(alone)
    monkeypatch.undo()
    assert online.parse_in_processes(iter(objects)).equals(alone)  # small: in this process


def test_both_parsing_paths_derive_the_same_id_for_an_event_without_one() -> None:
    import json

    from recpipe.etl.lines import _delivered_rows, delivered_rows

    line = json.dumps(record(None, "seed", "2026-12-05T07:00:01Z", [("S3", "browse", None)], "r-8")).encode()
    fast, slow = delivered_rows("2026/12/05/07", line), _delivered_rows("2026/12/05/07", line)
    assert fast == slow and len(fast[0].event_id or "") == 32
