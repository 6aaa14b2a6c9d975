"""The session store in a real PostgreSQL, and every serving path reading it: the stream's
transformation records each event; /recommendations and /sessions/{id}/recommendations answer
from it (strategy ``session``) over a real HTTP server."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from recpipe.adapters import open_vectors
from recpipe.contracts.events import Activity, Event
from recpipe.contracts.limits import MAX_RECENT, RECENT_TTL_S
from recpipe.streaming.transform import enricher_from_settings, transform
from recpipe.vectors import matrix, sessions
from recpipe.vectors.connect import connect
from recpipe.vectors.query import Filters, VectorQueries
from tests.support.stack import Stack, served_encoder

pytestmark = pytest.mark.integration


def event(session: str, customer: int | None, codes: list[str], *, cart: tuple[str, ...] = (),
          at: str | None = None) -> Event:
    return Event.model_validate({
        "session_id": session, "customer_number": customer,
        "event_time": at or dt.datetime.now(dt.UTC).isoformat(),
        "browse_history": [{"product_code": c, "quantity": 1, "in_shopping_cart": c in cart} for c in codes]})


def rows(stack_or_url: Any, sql: str, *args: Any) -> list[Any]:
    conninfo = stack_or_url.db.conninfo() if isinstance(stack_or_url, Stack) else stack_or_url
    with psycopg.connect(conninfo) as c:
        return c.execute(sql, args).fetchall()


def deliver(stack: Stack, events: list[Event]) -> list[dict[str, Any]]:
    """The events through the transformation, as the delivery invokes it."""
    doc = {"invocationId": "t", "records": [{"recordId": str(i), "approximateArrivalTimestamp": 0,
                                             "data": base64.b64encode(e.to_bytes()).decode()}
                                            for i, e in enumerate(events)]}
    out = transform(doc, enricher_from_settings(stack.settings()))["records"]
    return [json.loads(base64.b64decode(r["data"])) for r in out]


# -- the store itself ------------------------------------------------------------------------------
@pytest.fixture
def conn(stack: Stack) -> Any:
    c = connect(stack.db)
    c.execute(f"DROP TABLE IF EXISTS {sessions.schema.RECENT}")
    yield c
    c.close()


def test_recent_products_come_back_oldest_first_with_their_kind(conn: Any) -> None:
    assert sessions.recent(conn, "session", "nobody") == ([], None)  # no table yet: nothing, no error
    sessions.record(conn, sessions.rows_of([event("s1", 7, ["A", "B", "C"], cart=("B",))]))
    got, customer = sessions.recent(conn, "session", "s1")
    assert got == [Activity("A"), Activity("B", "cart"), Activity("C")] and customer == 7
    assert sessions.recent(conn, "customer", 7)[0] == got
    sessions.record(conn, sessions.rows_of([event("s1", 7, ["A", "B", "C", "A"])]))  # A again: now the latest
    assert [a.product_code for a in sessions.recent(conn, "session", "s1")[0]] == ["B", "C", "A"]


def test_the_store_keeps_the_latest_max_recent_per_owner(conn: Any) -> None:
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i in range(3 * MAX_RECENT):  # one product per event, as a session grows
        sessions.record(conn, sessions.rows_of([event("long", None, [f"P{i:03d}"], at=(base + dt.timedelta(
            seconds=i)).isoformat())]))
    kept = conn.execute(f"SELECT count(*) FROM {sessions.schema.RECENT} WHERE owner = 'long'").fetchone()[0]
    assert kept == MAX_RECENT
    got = [a.product_code for a in sessions.recent(conn, "session", "long")[0]]
    assert got == [f"P{i:03d}" for i in range(2 * MAX_RECENT, 3 * MAX_RECENT)]


def test_owners_left_unpruned_by_their_writer_are_trimmed_by_the_sweep(conn: Any) -> None:
    """A writer prunes only the owners its Recorder saw crowded; the sweep with the expiry
    trims the rest (reads never see more than MAX_RECENT either way)."""
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i in range(2 * MAX_RECENT):
        sessions.record(conn, sessions.rows_of([event("unpruned", None, [f"Q{i:03d}"], at=(base + dt.timedelta(
            seconds=i)).isoformat())]), prune=[])
    count = f"SELECT count(*) FROM {sessions.schema.RECENT} WHERE owner = 'unpruned'"
    assert conn.execute(count).fetchone()[0] == 2 * MAX_RECENT
    assert len(sessions.recent(conn, "session", "unpruned")[0]) == MAX_RECENT
    assert sessions.expire(conn) == MAX_RECENT
    assert conn.execute(count).fetchone()[0] == MAX_RECENT
    assert [a.product_code for a in sessions.recent(conn, "session", "unpruned")[0]] == [
        f"Q{i:03d}" for i in range(MAX_RECENT, 2 * MAX_RECENT)]


def test_an_older_event_arriving_late_changes_nothing(conn: Any) -> None:
    sessions.record(conn, sessions.rows_of([event("s", None, ["A", "B"], cart=("B",), at="2026-12-01T10:05:00Z")]))
    sessions.record(conn, sessions.rows_of([event("s", None, ["B", "A"], at="2026-12-01T10:00:00Z")]))
    assert sessions.recent(conn, "session", "s")[0] == [Activity("A"), Activity("B", "cart")]


def test_products_expire_by_when_they_were_recorded_not_by_their_event_time(conn: Any) -> None:
    sessions.record(conn, sessions.rows_of([event("old-replay", 5, ["A"], at="1998-03-01T10:00:00Z")]))
    assert sessions.recent(conn, "session", "old-replay")[0] == [Activity("A")]  # replayed history is recent
    for kind, ttl in RECENT_TTL_S.items():  # recorded longer ago than the TTL: gone
        conn.execute(f"UPDATE {sessions.schema.RECENT} SET recorded_at = now() - make_interval(secs => %s) "
                     "WHERE owner_kind = %s", (ttl + 1, kind))
    assert sessions.recent(conn, "session", "old-replay") == ([], None)
    assert sessions.recent(conn, "customer", 5) == ([], None)
    assert sessions.expire(conn) == 2
    assert conn.execute(f"SELECT count(*) FROM {sessions.schema.RECENT}").fetchone()[0] == 0


def test_concurrent_writers_neither_deadlock_nor_break_the_bound(stack: Stack, conn: Any) -> None:
    """8 writers, each recording the same 4 customers' and sessions' growing histories in a
    different order: no error, no owner over the bound, each owner's latest products kept."""
    errors: list[BaseException] = []
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    def writer(w: int) -> None:
        c = connect(stack.db)
        try:
            for step in range(40):
                batch = [event(f"s{o}", 100 + o, [f"P{(step + j) % 50:02d}" for j in range(8)],
                               at=(base + dt.timedelta(seconds=step, microseconds=w)).isoformat())
                         for o in ((w + k) % 4 for k in range(4))]
                sessions.record(c, sessions.rows_of(batch))
        except BaseException as exc:
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    counts = conn.execute(f"SELECT owner, count(*) FROM {sessions.schema.RECENT} GROUP BY owner").fetchall()
    assert len(counts) == 8 and all(n <= MAX_RECENT for _, n in counts)
    latest = [a.product_code for a in sessions.recent(conn, "session", "s0")[0]][-8:]
    assert latest == [f"P{(39 + j) % 50:02d}" for j in range(8)]  # the last step's history, in order


def test_the_store_survives_a_database_restart(tmp_path: Path) -> None:
    db = open_vectors(f"pgserver://{tmp_path / 'pg'}")
    try:
        c = connect(db)
        sessions.record(c, sessions.rows_of([event("kept", 9, ["A", "B"])]))
        c.close()
        db.stop()
        c = connect(db)  # the embedded server starts again
        assert sessions.recent(c, "session", "kept") == ([Activity("A"), Activity("B")], 9)
        c.close()
    finally:
        db.stop()


# -- every serving path reads it ---------------------------------------------------------------------------
def _expected(stack: Stack, customer: int | None, recent: list[Activity], k: int = 10) -> list[str]:
    """pgvector's own top k for the session's vector, in stock, without the history or purchases."""
    with VectorQueries(stack.db) as q:
        own = q.user_vectors([customer]).get(customer) if customer is not None else None
        vector = served_encoder(stack).user_vector(own, recent, q.item_vectors([a.product_code for a in recent]))
        found = q.items_for_embedding(vector, k, exclude=sorted({a.product_code for a in recent}),
                                      filters=Filters(in_stock=True, not_bought_by=customer))
    return [str(s.id) for s in found]


def test_a_click_on_the_stream_changes_the_customers_recommendations(http: httpx.Client, stack: Stack) -> None:
    customer = rows(stack, "SELECT min(id) FROM user_emb")[0][0]
    bought = {r[0] for r in rows(stack, "SELECT product_code FROM purchases WHERE customer_number = %s", customer)}
    before = http.get(f"/recommendations/{customer}").json()
    assert before["strategy"] == "stored"
    browsed = [r[0] for r in rows(stack, "SELECT id FROM item_emb ORDER BY id DESC LIMIT 3")]
    enriched = deliver(stack, [event("sess-1", customer, browsed, cart=(browsed[-1],))])
    after = http.get(f"/recommendations/{customer}").json()
    got = [i["id"] for i in after["items"]]
    recent = [Activity(browsed[0]), Activity(browsed[1]), Activity(browsed[2], "cart")]
    assert after["strategy"] == "session" and got == _expected(stack, customer, recent)
    assert got != [i["id"] for i in before["items"]] and not (set(got) & (set(browsed) | bought))
    assert [i["id"] for i in enriched[0]["recommended_items"]] == got  # the stream said the same
    assert enriched[0]["strategy"] == "session"


def test_recent_given_explicitly_overrides_the_store(http: httpx.Client, stack: Stack) -> None:
    customer = rows(stack, "SELECT max(id) FROM user_emb")[0][0]
    codes = [r[0] for r in rows(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 2")]
    r = http.get(f"/recommendations/{customer}", params={"recent": ",".join(codes), "k": 5})
    assert r.status_code == 200 and r.json()["strategy"] == "session"
    assert [i["id"] for i in r.json()["items"]] == _expected(stack, customer, [Activity(c) for c in codes], 5)
    assert http.get(f"/recommendations/{customer}", params={"recent": ""}).json()["strategy"] == "stored"
    unknown = http.get(f"/recommendations/{customer}", params={"recent": "NOPE,NOT_EITHER"}).json()
    assert unknown["strategy"] == "stored"  # nothing the model knows in it
    kept = http.get(f"/recommendations/{customer}", params={"recent": codes[0], "exclude_browsed": "false"}).json()
    assert kept["strategy"] == "session"
    assert http.get(f"/recommendations/{customer}", params={"recent": ",".join(["X"] * (MAX_RECENT + 1))}
                    ).status_code == 422
    assert http.get(f"/recommendations/{customer}", params={"recent": "Y" * 40}).status_code == 422


def test_a_visitors_session_is_served_by_its_id(http: httpx.Client, stack: Stack) -> None:
    fresh = http.get("/sessions/never-seen/recommendations").json()
    assert fresh["strategy"] == "popular" and fresh["customer_number"] is None and len(fresh["items"]) == 10
    browsed = [r[0] for r in rows(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 2 OFFSET 5")]
    deliver(stack, [event("visitor/ä 1", None, browsed)])
    got = http.get("/sessions/visitor%2F%C3%A4%201/recommendations").json()
    assert got["strategy"] == "session" and got["customer_number"] is None and got["session_id"] == "visitor/ä 1"
    assert [i["id"] for i in got["items"]] == _expected(stack, None, [Activity(c) for c in browsed])
    customer = rows(stack, "SELECT id FROM user_emb ORDER BY id LIMIT 1 OFFSET 1")[0][0]
    deliver(stack, [event("known-session", customer, browsed)])
    known = http.get("/sessions/known-session/recommendations").json()
    assert known["customer_number"] == customer and known["strategy"] == "session"
    assert [i["id"] for i in known["items"]] == _expected(stack, customer, [Activity(c) for c in browsed])


def test_in_process_ranking_is_pgvectors_exact_answer(stack: Stack) -> None:
    """The stream ranks a small catalog in process (vectors.matrix): the same products, order
    and scores as pgvector's exact search with the same filters."""
    rng = np.random.default_rng(7)
    with VectorQueries(stack.db) as q:
        m = q.read(matrix.read)
        assert m is not None and len(m) == rows(stack, "SELECT count(*) FROM item_emb")[0][0]
        queries = rng.normal(size=(40, m.vectors.shape[1]))
        leave = [set(rng.choice(m.ids, size=6, replace=False).tolist()) for _ in queries]
        got = m.top(queries, 10, [m.rows(s) for s in leave], in_stock=True)
    with psycopg.connect(stack.db.conninfo()) as c:
        register_vector(c)
        c.execute("SET enable_indexscan = off")
        for query, skip, mine in zip(queries, leave, got, strict=True):
            exact = c.execute("SELECT id, 1 - (embedding <=> %(v)s) FROM item_emb WHERE quantity_in_stock > 0 "
                              "AND id <> ALL(%(skip)s) ORDER BY embedding <=> %(v)s, id COLLATE \"C\" LIMIT 10",
                              {"v": query.astype(np.float32), "skip": sorted(skip)}).fetchall()
            assert [s.id for s in mine] == [r[0] for r in exact]
            assert np.allclose([s.score for s in mine], [r[1] for r in exact], atol=1e-5)


def test_the_stream_answers_alike_through_the_index_when_the_catalog_is_large(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above matrix.EXACT_MAX_ITEMS the stream asks pgvector's index, with the same filters."""
    codes = [r[0] for r in rows(stack, "SELECT id FROM item_emb ORDER BY id")]
    customers = [r[0] for r in rows(stack, "SELECT id FROM user_emb ORDER BY id LIMIT 6")]
    events = [event(f"alike-{i}", customers[i] if i < len(customers) else None, codes[i * 3:i * 3 + 3 + i],
                    cart=(codes[i * 3],)) for i in range(10)]
    with VectorQueries(stack.db) as q:
        assert q.read(matrix.read) is not None  # this catalog is ranked in process...
        in_process = deliver(stack, events)
        monkeypatch.setattr(matrix, "EXACT_MAX_ITEMS", 0)
        assert q.read(matrix.read) is None  # ...and now through the index
    indexed = deliver(stack, events)
    assert [r["strategy"] for r in in_process] == ["session"] * 10
    assert [[i["id"] for i in r["recommended_items"]] for r in indexed] == \
        [[i["id"] for i in r["recommended_items"]] for r in in_process]


def test_a_database_user_without_rights_on_the_store_still_gets_every_record_enriched(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """A read-only user (RDS: a reporting role): the stream still enriches and delivers every
    record and says once why the session store was not written; the service still answers."""
    from recpipe.config import load_settings

    owner = stack.db.conninfo()
    with psycopg.connect(owner, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS recent_activity")
        if c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'reader'").fetchone():
            c.execute("DROP OWNED BY reader")
            c.execute("DROP ROLE reader")
        c.execute("CREATE ROLE reader LOGIN")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    reader = owner.replace("postgresql://postgres:", "postgresql://reader:")
    settings = load_settings({"artifacts_url": str(stack.artifacts), "vectors_url": reader},
                             environ={"RECPIPE_HOME": str(stack.root / "home")})
    codes = [r[0] for r in rows(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 2")]
    doc = {"invocationId": "r", "records": [{"recordId": str(i), "approximateArrivalTimestamp": 0,
                                             "data": base64.b64encode(event(f"ro-{i}", None, codes).to_bytes()).decode()}
                                            for i in range(3)]}
    enricher = enricher_from_settings(settings)
    with caplog.at_level("WARNING"):
        out = transform(doc, enricher)["records"]
        transform(doc, enricher)
    assert [r["result"] for r in out] == ["Ok"] * 3
    assert all(json.loads(base64.b64decode(r["data"]))["strategy"] == "session" for r in out)
    said = [r.getMessage() for r in caplog.records if "session store was not written" in r.getMessage()]
    assert len(said) == 1 and "permission denied" in said[0] and enricher.store_failures == 2
    with psycopg.connect(owner, autocommit=True) as c:  # the store exists, but the reader may not read it
        sessions.ensure(c)
        sessions.record(c, sessions.rows_of([event("ro-0", None, codes)]))
        c.execute("REVOKE ALL ON recent_activity FROM reader")
    with psycopg.connect(reader, autocommit=True) as c, caplog.at_level("WARNING"):
        assert sessions.recent(c, "session", "ro-0") == ([], None)
    assert any("cannot be read" in r.getMessage() for r in caplog.records)
