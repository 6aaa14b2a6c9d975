"""The service under the faults that broke it (issue: hardening): vector loads while clients
query (no deadlock, no failed load, no non-2xx answer), and the embedded database stopped under
load (only 503 with Retry-After and the JSON error, no path or command in any answer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def _customers(stack: Stack) -> list[int]:
    with psycopg.connect(stack.db.conninfo()) as c:
        return [r[0] for r in c.execute("SELECT id FROM user_emb ORDER BY id LIMIT 20").fetchall()]


def _item(stack: Stack) -> str:
    with psycopg.connect(stack.db.conninfo()) as c:
        return str(c.execute("SELECT id FROM item_emb ORDER BY id LIMIT 1").fetchone()[0])


def _serve(settings: Any) -> Any:
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    return serving(create_app(settings, service=Service(settings, ef_search=100, check_every=0.2)))


def _hammer(url: str, clients: int, paths: list[str], stop: threading.Event,
            answers: list[tuple[float, int, str, dict[str, str]]]) -> list[threading.Thread]:
    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            i = n
            while not stop.is_set():
                try:
                    r = c.get(paths[i % len(paths)])
                    answers.append((time.monotonic(), r.status_code, r.text, dict(r.headers)))
                except httpx.HTTPError as exc:  # a reset connection is an answer too: a wrong one
                    answers.append((time.monotonic(), 0, repr(exc), {}))
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    return threads


@pytest.fixture
def load_under_queries(stack: Stack) -> Iterator[Callable[[int], tuple[list[Any], list[Any]]]]:
    settings = stack.settings()
    customers = _customers(stack)
    paths = [p for c in customers for p in (f"/recommendations/{c}?k=5", f"/customers/{c}")] + [
        f"/items_from_item?item_id={_item(stack)}&limit=5", "/recommendations/999999?k=5", "/products?q=S",
        f"/products/{_item(stack)}"]  # the page's reads join the tables in other orders than the switch
    with _serve(settings) as url:
        def run(loads: int) -> tuple[list[Any], list[Any]]:
            stop, answers, failures = threading.Event(), [], []
            threads = _hammer(url, 16, paths, stop, answers)
            try:
                return _loads(stack, loads, answers, failures)
            finally:
                stop.set()
                for t in threads:
                    t.join(60)

        yield run


def _loads(stack: Stack, loads: int, answers: list[Any], failures: list[Any]) -> tuple[list[Any], list[Any]]:
    time.sleep(0.5)

    def load() -> None:
        try:
            stack.load()
        except BaseException as exc:
            failures.append(exc)

    loaders = [threading.Thread(target=load) for _ in range(loads)]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join(300)
    time.sleep(0.3)
    return answers, failures


def test_vector_loads_while_clients_query_neither_deadlock_nor_fail(
        load_under_queries: Callable[[int], tuple[list[Any], list[Any]]]) -> None:
    answers, failures = load_under_queries(10)
    bad = [(s, text[:200]) for _, s, text, _ in answers if not 200 <= s < 300]
    assert not failures, failures
    assert len(answers) > 100 and not bad, bad[:5]
    print(f"10 loads under 16 clients: {len(answers)} answers, all 2xx")


def test_a_load_never_deadlocks_with_a_reader_that_takes_the_tables_in_another_order(stack: Stack) -> None:
    """A reader holds ``customers`` and then reads ``user_emb`` while the switch waits for
    ``customers``: the switch used to hold ``user_emb`` by then (it took its locks one table at a
    time), and PostgreSQL ended one side with DeadlockDetected."""
    failures: list[BaseException] = []

    def load() -> None:
        try:
            stack.load()
        except BaseException as exc:
            failures.append(exc)

    with psycopg.connect(stack.db.conninfo()) as reader, psycopg.connect(stack.db.conninfo(),
                                                                          autocommit=True) as watch:
        with reader.transaction():
            reader.execute("SELECT count(*) FROM customers").fetchone()
            loader = threading.Thread(target=load)
            loader.start()
            deadline = time.monotonic() + 60
            while not watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                                    "'customers'::regclass").fetchone()[0]:
                assert time.monotonic() < deadline and loader.is_alive(), "the switch never waited for customers"
                time.sleep(0.01)
            reader.execute("SELECT count(*) FROM user_emb").fetchone()  # used to deadlock here
        loader.join(120)
    assert not failures, failures


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with _serve(stack.settings()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_a_known_customer_without_an_embedding_is_served_from_their_features(http: httpx.Client,
                                                                              stack: Stack) -> None:
    with psycopg.connect(stack.db.conninfo()) as c:
        number = c.execute("SELECT id FROM customers WHERE id NOT IN (SELECT id FROM user_emb) AND city IS NOT NULL "
                           "ORDER BY id LIMIT 1").fetchone()[0]
    answer = http.get(f"/recommendations/{number}", params={"k": 5}).json()
    assert answer["strategy"] == "features" and len(answer["items"]) == 5
    assert http.get("/recommendations/999999", params={"k": 5}).json()["strategy"] == "popular"  # unknown: popular


def test_the_fuzzed_and_hand_found_request_defects(http: httpx.Client, stack: Stack) -> None:
    empty = http.get("/recommendations/0", params={"product_line": ""})
    assert empty.status_code == 200, empty.text  # an empty product line means any line
    with psycopg.connect(stack.db.conninfo(), autocommit=True) as c:
        code = c.execute("SELECT id FROM catalog ORDER BY id LIMIT 1").fetchone()[0]
        c.execute("UPDATE catalog SET id = 'S10/1' WHERE id = %s", (code,))
        try:
            slashed = http.get("/products/S10%2F1")
            assert slashed.status_code == 200 and slashed.json()["product"]["id"] == "S10/1", slashed.text
        finally:
            c.execute("UPDATE catalog SET id = %s WHERE id = 'S10/1'", (code,))
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"city": ' + b"9" * 500_000 + b"}"):
        r = http.post("/user_embeddings", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "nested" in r.text and "UTF-8" in r.text


def test_before_any_load_the_item_map_is_empty_and_queries_say_to_load(stack: Stack) -> None:
    from dataclasses import replace

    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    with psycopg.connect(stack.db.conninfo(), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS nothing_loaded")
        c.execute("CREATE DATABASE nothing_loaded")
    empty = stack.db.conninfo().replace("/postgres?", "/nothing_loaded?")
    assert "nothing_loaded" in empty
    settings = replace(stack.settings(), vectors_url=empty)
    with serving(create_app(settings, service=Service(settings))) as url, httpx.Client(base_url=url) as http:
        item_map = http.get("/pipeline/item_map")
        assert item_map.status_code == 200 and item_map.json()["items"] == 0
        asked = http.get("/items_from_item", params={"item_id": "S10_1002"})
        assert asked.status_code in (404, 503) and "Traceback" not in asked.text
