"""The inference service for real: a uvicorn server on 127.0.0.1 in front of a trained (small)
model and the embedded PostgreSQL + pgvector, loaded with the catalog and purchases."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from recpipe.adapters import open_artifacts
from recpipe.config import load_settings
from recpipe.inference.model import Model
from recpipe.vectors.query import VectorQueries
from tests.support.lambda_events import function_url_event
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def _shop(stack: Stack, sql: str, *args: Any) -> list[Any]:
    with psycopg.connect(stack.db.conninfo()) as c:
        return c.execute(sql, args).fetchall()


def test_the_seeds_endpoints(http: httpx.Client, stack: Stack) -> None:
    people = [{"city": "Nantes", "country": "France", "creditlimit": 21000.0},
              {"city": "Atlantis", "country": "Nowhere", "creditlimit": None}]
    r = http.post("/user_embeddings", json=people)
    assert r.status_code == 200 and r.headers["x-model-version"] == stack.version
    store, name = open_artifacts(str(stack.artifacts))
    model = Model.load(store, name)
    expected, _ = model.user_embeddings([{"city": "Nantes", "country": "France", "creditLimit": 21000.0},
                                         {"city": "Atlantis", "country": "Nowhere", "creditLimit": None}])
    got = np.array(r.json(), dtype=np.float32)
    assert got.shape == (2, 32) and np.abs(got - expected).max() < 1e-6
    items = http.post("/items_from_user", params={"limit": 5}, json=r.json()[0])
    assert items.status_code == 200 and items.headers["x-recommendation-id"]
    with VectorQueries(stack.db, ef_search=200) as q:
        assert items.json() == [{"id": s.id, "score": pytest.approx(s.score, abs=1e-6)}
                                for s in q.items_for_embedding(got[0], 5)]
    item = _shop(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 1")[0][0]
    similar = http.get("/items_from_item", params={"item_id": item, "limit": 4})
    assert similar.status_code == 200 and len(similar.json()) == 4
    assert item not in [s["id"] for s in similar.json()] and set(similar.json()[0]) == {"id", "score"}
    assert similar.headers["x-model-version"] == stack.version and similar.headers["x-recommendation-id"]


def test_recommendations_apply_the_rules(http: httpx.Client, stack: Stack) -> None:
    customer, bought = _shop(stack, "SELECT customer_number, array_agg(product_code) FROM purchases "
                                    "WHERE customer_number IN (SELECT id FROM user_emb) GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    lines = dict(_shop(stack, "SELECT id, product_line FROM catalog"))
    stock = dict(_shop(stack, "SELECT id, quantity_in_stock FROM catalog"))
    first = http.get(f"/recommendations/{customer}", params={"k": 6}).json()
    assert first["strategy"] == "stored" and len(first["items"]) == 6 and first["recommendation_id"]
    cart = [first["items"][0]["id"]]
    r = http.get(f"/recommendations/{customer}", params={"k": 8, "cart": cart, "exclude": [first["items"][1]["id"]],
                                                          "max_per_line": 2})
    body = r.json()
    ids = [i["id"] for i in body["items"]]
    assert r.status_code == 200 and len(ids) == 8 and body["model_version"] == stack.version
    assert not set(ids) & (set(bought) | set(cart) | {first["items"][1]["id"]})
    assert all(stock[i] > 0 for i in ids)
    assert max(sum(1 for i in ids if lines[i] == line) for line in set(lines.values())) <= 2
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    line = lines[ids[0]]
    only = http.get(f"/recommendations/{customer}", params={"k": 3, "product_line": line}).json()
    assert {i["product_line"] for i in only["items"]} == {line}
    with_bought = http.get(f"/recommendations/{customer}", params={"k": 50, "exclude_bought": "false",
                                                                   "in_stock": "false"}).json()
    assert len(with_bought["items"]) == 50


def test_served_recommendations_are_the_models_own_top_k_minus_what_was_bought(
        http: httpx.Client, stack: Stack) -> None:
    """The published vectors, ranked in numpy by the model's score over every embedded product
    the customer has not bought, give exactly what the service answers."""
    from recpipe.contracts.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS
    from recpipe.vectors.files import parse_embeddings

    users = parse_embeddings((stack.artifacts / USER_EMBEDDINGS).read_bytes(), "users", id_type=pa.int32())
    items = parse_embeddings((stack.artifacts / ITEM_EMBEDDINGS).read_bytes(), "items", id_type=pa.string())
    codes = np.array(items.ids.to_pylist())
    bought = dict(_shop(stack, "SELECT customer_number, array_agg(product_code) FROM purchases GROUP BY 1"))
    for row in (0, 7, len(users) // 2, len(users) - 1):
        customer = users.ids[row].as_py()
        scores = items.vectors @ users.vectors[row]
        scores[np.isin(codes, bought.get(customer, []))] = -np.inf
        expected = [str(c) for c in codes[np.argsort(-scores, kind="stable")[:10]]]
        r = http.get(f"/recommendations/{customer}", params={"k": 10, "in_stock": "false"}).json()
        assert r["strategy"] == "stored" and [i["id"] for i in r["items"]] == expected
        assert [i["score"] for i in r["items"]] == pytest.approx(np.sort(scores)[::-1][:10].tolist(), abs=1e-5)


def test_cold_starts(http: httpx.Client, stack: Stack) -> None:
    unknown = http.get("/recommendations/999999", params={"k": 5}).json()
    assert unknown["strategy"] == "popular" and len(unknown["items"]) == 5
    top = _shop(stack, "SELECT product_code FROM purchases GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 20")
    assert unknown["items"][0]["id"] in [t[0] for t in top]
    nothing_known = http.get("/recommendations/999999", params={"city": "Atlantis", "country": "Nowhere"}).json()
    assert nothing_known["strategy"] == "popular"
    with_features = http.get("/recommendations/999999", params={"city": "Nantes", "country": "France",
                                                                "credit_limit": 50000}).json()
    assert with_features["strategy"] == "features" and len(with_features["items"]) == 10
    # a product added to the catalog after training: items of its product line
    with psycopg.connect(stack.db.conninfo(), autocommit=True) as c:
        c.execute("INSERT INTO catalog VALUES ('NEW_1', 'Planes', 5) ON CONFLICT DO NOTHING")
    new = http.get("/items_from_item", params={"item_id": "NEW_1", "limit": 3})
    assert new.status_code == 200 and len(new.json()) == 3
    planes = {r[0] for r in _shop(stack, "SELECT id FROM catalog WHERE product_line = 'Planes'")}
    assert {i["id"] for i in new.json()} <= planes - {"NEW_1"}
    missing = http.get("/items_from_item", params={"item_id": "NOWHERE"})
    assert missing.status_code == 404 and "not in the catalog" in missing.json()["error"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("GET", "/items_from_item", {"params": {"item_id": "S10_1", "limit": -1}}, 422),
    ("GET", "/items_from_item", {"params": {"item_id": "S10_1", "limit": 10**9}}, 422),
    ("GET", "/items_from_item", {"params": {"limit": 5}}, 422),
    ("GET", "/recommendations/abc", {}, 422),
    ("GET", "/recommendations/1", {"params": {"k": 0}}, 422),
    ("GET", "/recommendations/1", {"params": {"credit_limit": "nan"}}, 422),
    ("GET", "/recommendations/1", {"params": {"max_per_lines": 2}}, 422),  # a typo is not ignored
    ("POST", "/user_embeddings", {"content": b'[{"city": ', "headers": {"content-type": "application/json"}}, 422),
    ("POST", "/user_embeddings", {"json": {"city": "Nantes"}}, 422),
    ("POST", "/user_embeddings", {"json": [{"creditlimit": "lots"}]}, 422),
    ("POST", "/items_from_user", {"json": [0.1] * 31}, 422),
    ("POST", "/items_from_user", {"json": ["x"] * 32}, 422),
    ("POST", "/items_from_user", {"json": [0.0] * 32}, 422),  # no direction: the cosine is NaN (was a 500)
    ("POST", "/items_from_user", {"json": [True] * 32}, 422),
    ("GET", "/recommendations/1000000000000000000", {}, 422),  # past PostgreSQL's integer (was a 500)
    ("GET", "/recommendations/-1", {}, 422),
    ("POST", "/user_embeddings", {"json": [{"creditlimit": False}]}, 422),  # a bool is not a number
    ("GET", "/no/such/path", {}, 404),
    ("DELETE", "/user_embeddings", {}, 405),
    ("POST", "/user_embeddings", {"content": b"[" + b'{"city": "Nantes"},' * 80_000 + b"{}]",
                                  "headers": {"content-type": "application/json"}}, 413),
])
def test_bad_input_is_a_clear_4xx(http: httpx.Client, method: str, path: str, kwargs: dict, status: int) -> None:  # type: ignore[type-arg]
    r = http.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_operations_endpoints(http: httpx.Client, stack: Stack) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == stack.version
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json").json()
    assert {"/user_embeddings", "/items_from_user", "/items_from_item", "/recommendations/{customer_number}"} <= set(spec["paths"])
    http.get("/items_from_item", params={"item_id": "NOWHERE"})
    text = http.get("/metrics").text
    assert 'recpipe_http_requests_total{method="GET",route="/items_from_item",status="404"}' in text
    assert 'recpipe_http_request_duration_seconds_bucket{le="0.02",method="GET",route="/health"}' in text


def test_an_outage_is_a_503_and_the_service_recovers(http: httpx.Client, stack: Stack) -> None:
    assert http.get("/recommendations/999999").status_code == 200
    assert stack.db.stop()
    try:
        down = http.get("/recommendations/999999")
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert "unavailable" in down.json()["error"] or "cannot connect" in down.json()["error"]
        assert http.get("/ready").status_code == 503
    finally:
        stack.db.conninfo()  # the database comes back
    for _ in range(20):
        if http.get("/recommendations/999999").status_code == 200:
            break
        time.sleep(0.1)
    assert http.get("/recommendations/999999").status_code == 200 and http.get("/ready").status_code == 200


def test_a_database_restart_under_load_gives_503s_only_while_it_is_down(server: str, stack: Stack) -> None:
    """8 clients keep asking while the vector database stops and starts again: every answer is a
    200 or a 503 with Retry-After, 503s come only from the outage, and the service recovers."""
    import threading

    answers: list[tuple[float, int]] = []
    no_retry_after: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server, timeout=30) as c:
            while not stop.is_set():
                r = c.get("/recommendations/999999", params={"k": 5})
                if r.status_code == 503 and r.headers.get("retry-after") != "1":
                    no_retry_after.append(r.status_code)
                answers.append((time.monotonic(), r.status_code))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    down_at = time.monotonic()
    assert stack.db.stop()
    time.sleep(1.0)
    stack.db.conninfo()  # back
    up_at = time.monotonic()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(30)
    statuses = {s for _, s in answers}
    assert statuses <= {200, 503} and not no_retry_after, statuses
    assert all(down_at <= at for at, s in answers if s == 503), "a 503 before the outage"
    assert any(s == 503 for _, s in answers), "the outage was not seen"
    late = [s for at, s in answers if at > up_at + 1.5]
    assert late and set(late) == {200}, "not recovered 1.5 s after the database came back"
    print(f"restart under load: {len(answers)} requests, {sum(s == 503 for _, s in answers)} 503s, no 5xx else")


def test_a_new_model_is_picked_up_without_a_restart(http: httpx.Client, stack: Stack) -> None:
    before = http.post("/user_embeddings", json=[{}])
    assert before.headers["x-model-version"] == stack.version
    version = stack.train(seed=2)
    stack.load()
    time.sleep(0.5)
    after = http.post("/user_embeddings", json=[{}])
    assert after.headers["x-model-version"] == version != stack.version
    stack.version = version


def test_the_lambda_handler_serves_a_function_url_event(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from recpipe.api import lambda_handler

    settings = stack.settings()
    for key, value in {"RECPIPE_ARTIFACTS_URL": settings.artifacts_url, "RECPIPE_VECTORS_URL": settings.vectors_url,
                       "RECPIPE_LAKE_URL": settings.lake_url, "RECPIPE_HOME": str(stack.root / "home")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(lambda_handler, "_handler", None)
    item = _shop(stack, "SELECT id FROM item_emb ORDER BY id LIMIT 1")[0][0]
    event = function_url_event("/items_from_item", f"item_id={item}&limit=3")
    for _ in range(2):  # a warm execution environment serves the next invocation with the same app
        response = lambda_handler.handler(event, None)
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert len(body) == 3 and item not in [b["id"] for b in body]


def test_the_service_uses_at_most_its_threads_connections_and_closes_them(stack: Stack) -> None:
    from recpipe.api.service import Service

    svc = Service(stack.settings(), threads=3)

    def backend(_: int) -> int:
        with svc.queries() as q:
            time.sleep(0.02)  # keep the thread busy so that others are used too
            return int(q._conn.info.backend_pid)  # the connection is private to recpipe.vectors

    async def many() -> list[int]:
        return await asyncio.gather(*(svc.run(backend, i) for i in range(12)))

    pids = set(asyncio.run(many()))
    assert 1 < len(pids) <= 3
    svc.close()
    with psycopg.connect(stack.db.conninfo()) as c:
        deadline = time.monotonic() + 10
        while pids & {r[0] for r in c.execute("SELECT pid FROM pg_stat_activity")} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pids & {r[0] for r in c.execute("SELECT pid FROM pg_stat_activity")}


def test_errors_have_one_shape_and_a_function_urls_double_slash_works(http: httpx.Client, server: str) -> None:
    for method, path in (("GET", "/no/such/path"), ("DELETE", "/user_embeddings")):
        body = http.request(method, path).json()
        assert set(body) == {"error", "hint"} and body["hint"] == "see /docs for the endpoints"
    zero = http.post("/items_from_user", json=[0.0] * 32).json()
    assert "all-zero embedding" in zero["error"]
    # what a client appending "/user_embeddings" to a Function URL (ending in "/") sends
    assert httpx.post(server + "//user_embeddings", json=[{"city": "Nantes"}], timeout=30).status_code == 200


def test_regressions_of_the_fuzzed_and_hand_found_defects(http: httpx.Client) -> None:
    # the OpenAPI page works offline: its assets come from the package, not a CDN
    page = http.get("/docs").text
    assert "cdn.jsdelivr" not in page and "/static-offline-docs/swagger-ui-bundle.js" in page
    bundle = http.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    # a JSON error says where it breaks
    broken = http.post("/user_embeddings", content=b'[{"city": "Nantes",}]', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"] and "(character" in broken.text
    # creditLimit (the source's spelling) is read; an unknown key is a 422 naming the known ones
    spelt = [http.post("/user_embeddings", json=[{"country": "France", key: 90000.0}]).json()[0]
             for key in ("creditlimit", "creditLimit")]
    assert spelt[0] == spelt[1] != http.post("/user_embeddings", json=[{"country": "France"}]).json()[0]
    assert "creditlimit (or creditLimit)" in http.post("/user_embeddings", json=[{"credit": 1}]).json()["error"]
    assert http.post("/user_embeddings", json=[{"creditlimit": False}]).status_code == 422  # a bool is no number
    assert http.post("/user_embeddings", json=[{"creditlimit": 1e300}]).status_code == 422  # past DECIMAL(10,2)
    # unknown query parameters on the seed's endpoints
    assert "known: item_id, limit" in http.get("/items_from_item", params={"item_id": "S10_1678", "k": 3}).text
    # an embedding of huge (finite) values: the same direction, not an overflow
    assert http.post("/items_from_user", json=[1e38] * 32).status_code == 200
    # 413 and /docs are counted under their routes, not "unmatched"
    assert http.post("/user_embeddings", content=b"[" + b"{}," * 400_000 + b"{}]",
                     headers={"content-type": "application/json"}).status_code == 413
    metrics = http.get("/metrics").text
    assert 'route="/user_embeddings",status="413"' in metrics and 'route="/docs",status="200"' in metrics


def test_an_empty_vector_database_is_not_ready_rather_than_wrong(stack: Stack, tmp_path: Path) -> None:
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    with psycopg.connect(stack.db.conninfo(), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS nothing_loaded")
        c.execute("CREATE DATABASE nothing_loaded")
    empty = stack.db.conninfo().replace("/postgres?", "/nothing_loaded?")
    assert "nothing_loaded" in empty
    settings = load_settings({"artifacts_url": str(tmp_path / "nothing-yet"), "vectors_url": empty},
                             environ={"RECPIPE_HOME": str(tmp_path / "home")})
    with serving(create_app(settings, service=Service(settings))) as url:
        for path in ("/recommendations/103", "/ready"):
            r = httpx.get(url + path, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", (path, r.text)
        assert "recpipe vectors load" in httpx.get(url + "/recommendations/103", timeout=30).json()["hint"]


def test_the_loaded_vectors_carry_their_model_and_need_no_artifacts(stack: Stack, tmp_path: Path) -> None:
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    settings = load_settings({"artifacts_url": str(tmp_path / "not-here"), "vectors_url": stack.db.conninfo()},
                             environ={"RECPIPE_HOME": str(tmp_path / "home")})
    with serving(create_app(settings, service=Service(settings))) as url:
        r = httpx.post(url + "/user_embeddings", json=[{"country": "France"}], timeout=30)
        assert r.status_code == 200 and r.headers["x-model-version"] == stack.version
        ready = httpx.get(url + "/ready", timeout=30).json()
        assert ready == {"ready": True, "model_version": stack.version, "published_model_version": None}


def test_a_trained_model_waits_for_vectors_load_instead_of_mixing_versions(http: httpx.Client, stack: Stack) -> None:
    """Regression: the service hot-reloaded a newly trained model while pgvector still held the
    old item vectors, pairing the new user tower with them."""
    people = [{"country": "France"}, {"city": "Nantes", "creditlimit": 50000.0}]
    before = http.post("/user_embeddings", json=people)
    version = stack.train(seed=3)  # published, not loaded
    time.sleep(0.5)  # the service checks every 0.2 s
    during = http.post("/user_embeddings", json=people)
    assert during.headers["x-model-version"] == stack.version != version
    assert during.json() == before.json()
    ready = http.get("/ready").json()
    assert ready["model_version"] == stack.version and ready["published_model_version"] == version
    assert "recpipe vectors load" in ready["waiting"]
    stack.load()
    time.sleep(0.5)
    after = http.post("/user_embeddings", json=people)
    assert after.headers["x-model-version"] == version and after.json() != before.json()
    assert "waiting" not in http.get("/ready").json()
    stack.version = version


def test_every_recommendations_answer_becomes_an_impression_in_the_lake(stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The service's impression log, end to end: answers over HTTP, the writer thread's objects
    in the sink, `etl events` into the lake; the same ids, lists, models and strategies."""
    import dataclasses
    import sqlite3

    from recpipe.adapters import open_lake, open_recommendations
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service
    from recpipe.etl.online import read_online
    from recpipe.etl.online import run as read_sink

    settings = dataclasses.replace(stack.settings(), recommendations_url=str(tmp_path / "sink"),
                                   serve_impressions_every=0.2)
    with sqlite3.connect(stack.root / "source.db") as db:
        customers = [r[0] for r in db.execute("SELECT customerNumber FROM customers ORDER BY 1 LIMIT 6")]
        product = db.execute("SELECT productCode FROM products ORDER BY 1").fetchone()[0]
    answers = []
    with serving(create_app(settings, service=Service(settings))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        for customer in customers:
            answers.append(client.get(f"/recommendations/{customer}", params={"k": 4}).json())
        answers.append(client.get("/sessions/v-1/recommendations", params={"recent": product}).json())
        assert client.get("/recommendations/-1").status_code == 422  # no answer, no impression
        import time as _time

        deadline = _time.monotonic() + 10  # the writer writes every 0.2 s
        while "recpipe_impressions_pending 0.0" not in (scraped := client.get("/metrics").text) \
                and _time.monotonic() < deadline:
            _time.sleep(0.1)
        assert "recpipe_impressions_written_total 7.0" in scraped and "recpipe_impressions_lost_total 0.0" in scraped
    objects = open_recommendations(str(tmp_path / "sink")).list_files("served/")
    assert objects and all(o.endswith(".ndjson") for o in objects)
    lake = open_lake(str(tmp_path / "lake"))
    read_sink(open_recommendations(str(tmp_path / "sink")), lake)
    shown = {i["recommendation_id"]: i for i in read_online(lake, "impressions").to_pylist()}
    assert set(shown) == {a["recommendation_id"] for a in answers}
    for a in answers:
        row = shown[a["recommendation_id"]]
        assert (row["source"], row["model_version"], row["strategy"]) == ("service", a["model_version"], a["strategy"])
        assert row["items"] == [i["id"] for i in a["items"]] and row["customer_number"] == a.get("customer_number")
    assert shown[answers[-1]["recommendation_id"]]["session_id"] == "v-1"
