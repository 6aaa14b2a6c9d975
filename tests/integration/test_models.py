"""Models side by side on a real PostgreSQL + pgvector: the promotion gate (pass, fail, force),
rollback (and under load: no failed or mixed answer), retention, a database loaded before models
were versioned, the registry, and experiments on the service and the stream alike."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from recpipe.adapters import open_artifacts, open_vectors
from recpipe.api.service import Service
from recpipe.contracts.artifacts import registered
from recpipe.contracts.events import Event
from recpipe.contracts.models import ModelTables, slug
from recpipe.errors import InputError
from recpipe.inference.recommend import Rules
from recpipe.vectors import experiments, models, registry
from recpipe.vectors.connect import connect
from recpipe.vectors.pipeline import loaded, read_artifacts
from recpipe.vectors.pipeline import run as load_vectors
from tests.support.stack import Stack
from tests.support.vectors import write_artifacts

pytestmark = pytest.mark.integration
GOOD = {"objective": "retrieval", "recall_at_10": 0.40, "ndcg_at_10": 0.30}


def _database(pg_server: Any) -> Any:
    name = f"m_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return open_vectors(pg_server.get_uri(name))


def _load(db: Any, root: Path, **options: Any) -> Any:
    store, name = open_artifacts(str(root))
    return load_vectors(db, store, name, **options)


def _tables(db: Any) -> set[str]:
    with psycopg.connect(db.conninfo()) as c:
        return {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _of(version: str) -> ModelTables:
    return ModelTables.of(version, slug(version))


def test_the_gate_promotes_refuses_and_is_forced_and_rollback_walks_back(pg_server: Any, tmp_path: Path) -> None:
    db = _database(pg_server)
    for n, recall in ((1, 0.40), (2, 0.41), (3, 0.30), (4, 0.42)):
        write_artifacts(tmp_path / f"a{n}", seed=n, version=f"v{n}", metrics=GOOD | {"recall_at_10": recall})
    first = _load(db, tmp_path / "a1")
    assert first.promoted and first.gate["reason"] == "no model serves yet"
    better = _load(db, tmp_path / "a2")
    assert better.promoted and better.serving == "v2" and better.gate["serving"] == "v1"
    worse = _load(db, tmp_path / "a3")
    assert not worse.promoted and worse.serving == "v2" and loaded(db)["model_version"] == "v2"  # type: ignore[index]
    assert [c["figure"] for c in worse.gate["checks"] if not c["passed"]] == ["recall@10"]
    with connect(db) as conn:
        kept = registry.model(conn, "v3")
    assert kept["gate"]["passed"] is False and _of("v3").items in _tables(db)  # loaded beside, not served
    forced = _load(db, tmp_path / "a3", force=True)
    assert forced.promoted and forced.gate["forced"] and "recall@10" in forced.gate["reason"]
    with psycopg.connect(db.conninfo()) as c:
        actions = [r[0] for r in c.execute("SELECT action FROM recpipe_promotions ORDER BY seq")]
    assert actions == ["first", "gate", "force"]

    back = models.rollback(db)
    assert (back.version, back.previous) == ("v2", "v3") and loaded(db)["model_version"] == "v2"  # type: ignore[index]
    assert models.rollback(db).version == "v1"
    with pytest.raises(InputError, match="no earlier promoted model"):
        models.rollback(db)
    with psycopg.connect(db.conninfo()) as c:  # the seed's names follow: views of the serving model's tables
        assert c.execute("SELECT count(*) FROM item_emb").fetchone()[0] == 300
        definition = c.execute("SELECT definition FROM pg_views WHERE viewname = 'item_emb'").fetchone()[0]
    assert _of("v1").items in definition

    # retention: beyond keep=2 the oldest go, never the serving one or the one a rollback brings back
    newest = _load(db, tmp_path / "a4", keep=2)
    assert newest.promoted and set(newest.dropped) == {"v2", "v3"}
    with connect(db) as conn:
        assert {m["version"] for m in registry.loaded(conn)} == {"v1", "v4"}
    assert not {_of("v2").items, _of("v3").items} & _tables(db)
    assert models.rollback(db).version == "v1"


def test_a_database_loaded_before_models_were_versioned_is_adopted(pg_server: Any, tmp_path: Path) -> None:
    db = _database(pg_server)
    old = write_artifacts(tmp_path / "a1", version="v1")
    write_artifacts(tmp_path / "a2", seed=5, version="v2")
    _load(db, tmp_path / "a1")
    t = _of("v1")
    with psycopg.connect(db.conninfo(), autocommit=True) as c:  # back to the layout of before: plain tables
        c.execute("DROP VIEW item_emb, user_emb")
        c.execute(f"ALTER TABLE {t.items} RENAME TO item_emb")
        c.execute(f"ALTER TABLE {t.users} RENAME TO user_emb")
        c.execute(f"ALTER TABLE {t.files} RENAME TO recpipe_model")
        c.execute("DROP TABLE recpipe_models, recpipe_promotions, recpipe_experiments")
    result = _load(db, tmp_path / "a2")
    assert result.promoted and result.serving == "v2"
    with connect(db) as conn:
        assert [p["action"] for p in registry.promotions(conn)] == ["adopted", "gate"]
    assert models.rollback(db).version == "v1"
    with psycopg.connect(db.conninfo()) as c:
        first = c.execute("SELECT (embedding::real[])[1] FROM item_emb WHERE id = %s", (old.items[3],)).fetchone()[0]
    assert first == pytest.approx(float(old.item_vectors[3][0]), abs=1e-6)


# -- a served, trained model: two versions side by side ---------------------------------------
@pytest.fixture(scope="module")
def two(stack: Stack) -> tuple[str, str]:
    """The stack's model and a second one trained with another seed, both loaded; the second serves."""
    v1 = stack.version
    v2 = stack.train(seed=2)
    stack.load()
    stack.version = v2
    return v1, v2


@pytest.fixture
def service(stack: Stack, two: tuple[str, str]) -> Iterator[Service]:
    svc = Service(stack.settings(), ef_search=200, check_every=0.1)
    try:
        yield svc
    finally:
        svc.close()


def _exact(stack: Stack, version: str) -> tuple[dict[int, np.ndarray], list[str], np.ndarray]:
    """A version's stored user and item vectors, from its copy in the registry (as the loader reads them)."""
    store, _ = open_artifacts(str(stack.artifacts))
    files = read_artifacts(store, registered(version))
    users, items = files["users"], files["items"]
    return dict(zip(users.ids.to_pylist(), users.vectors, strict=True)), items.ids.to_pylist(), items.vectors


def _top(known: tuple[dict[int, np.ndarray], list[str], np.ndarray], customer: int, k: int) -> list[str]:
    users, ids, vectors = known
    u = users[customer]
    scores = vectors @ u / np.linalg.norm(vectors, axis=1) / np.linalg.norm(u)
    return [ids[i] for i in np.lexsort((np.array(ids), -np.round(scores, 5)))[:k]]


PLAIN = Rules(k=5, exclude_bought=False, in_stock=False)


def test_the_registry_lists_every_model_and_promote_loads_one_from_it(stack: Stack, two: tuple[str, str],
                                                                       pg_server: Any) -> None:
    v1, v2 = two
    store, _ = open_artifacts(str(stack.artifacts))
    assert set(models.versions(store)) >= {v1, v2}
    rows = {r["version"]: r for r in models.listing(stack.db, store)}
    assert rows[v2]["serving"] and rows[v1]["loaded"] and rows[v1]["rollback_target"]
    assert rows[v1]["figures"]["recall@10"] > 0 and rows[v2]["gate"] in ("passed", "forced")
    shown = models.show(stack.db, store, v1)
    assert shown["manifest"]["model_version"] == v1 and shown["manifest"]["data"]["rows"] > 0
    fresh = _database(pg_server)  # nothing loaded: promote loads the version from the registry
    done = models.promote(fresh, store, v1, keep=3)
    assert done.loaded and done.version == v1 and loaded(fresh)["model_version"] == v1  # type: ignore[index]
    assert models.promote(fresh, store, v1, keep=3).loaded is False  # loaded now: a switch only


def test_an_experiment_splits_shoppers_on_the_service_and_the_stream_alike(
        stack: Stack, two: tuple[str, str], service: Service) -> None:
    v1, v2 = two
    known = {v: _exact(stack, v) for v in two}
    customers = sorted(known[v1][0])[:60]
    with connect(stack.db) as conn:
        e = experiments.start(conn, f"ab-{uuid.uuid4().hex[:6]}", [("A", v1), ("B", v2)], None)
    try:
        time.sleep(0.3)
        seen: dict[int, str] = {}
        for c in customers:
            rec = service.for_customer(c, None, PLAIN, [])
            variant = e.assign(c)
            assert (rec.variant, rec.model_version, rec.strategy) == (variant.name, variant.target, "stored")
            assert [i["id"] for i in rec.items] == _top(known[rec.model_version], c, 5)  # that model's own, whole
            seen[c] = rec.variant
        assert set(seen.values()) == {"A", "B"}
        again = service.for_customer(customers[0], None, PLAIN, [])
        assert again.variant == seen[customers[0]]
        # a visitor is assigned by session; the stream's transformation assigns alike
        visitor, _ = service.for_session("visitor-1", None, PLAIN, [])
        assert visitor.variant == e.assign("visitor-1").name
        from recpipe.streaming.transform import enricher_from_settings

        enricher = enricher_from_settings(stack.settings())
        events = [Event(session_id=f"s{c}", customer_number=c, event_time="2026-12-05T10:00:00Z", browse_history=[])
                  for c in customers] + [Event(session_id="visitor-1", event_time="2026-12-05T10:00:00Z",
                                               browse_history=[])]
        records = enricher.enrich(events)
        assert [r.get("variant") for r in records] == [seen[c] for c in customers] + [visitor.variant]
        assert all(r["model_version"] == e.assign(c).target for r, c in zip(records, customers, strict=False))
    finally:
        with connect(stack.db) as conn:
            experiments.stop(conn, e.name, {})
    time.sleep(0.3)
    after = service.for_customer(customers[0], None, PLAIN, [])
    assert after.variant is None and after.model_version == v2


def test_a_popularity_variant_gets_the_popular_list(stack: Stack, two: tuple[str, str], service: Service) -> None:
    _, v2 = two
    with connect(stack.db) as conn:
        e = experiments.start(conn, f"pop-{uuid.uuid4().hex[:6]}", [("model", v2), ("popular", "popularity")], [50])
    try:
        time.sleep(0.3)
        got = {c: service.for_customer(c, None, PLAIN, []) for c in range(103, 163)}
        for c, rec in got.items():
            want = e.assign(c)
            assert rec.variant == want.name
            assert (rec.strategy == "popular") == want.popularity
        # a control asked for by the caller (?strategy=popular) stays outside the experiment
        assert service.for_customer(103, None, Rules(k=5, popular=True), []).variant is None
        with pytest.raises(InputError, match="is running"), connect(stack.db) as conn:
            experiments.start(conn, "another", [("A", v2), ("B", "popularity")], None)
    finally:
        with connect(stack.db) as conn:
            experiments.stop(conn, e.name, {})


def test_rollback_under_load_has_no_failed_or_mixed_answer(stack: Stack, two: tuple[str, str],
                                                           service: Service) -> None:
    """16 threads ask for stored customers' lists while the serving model changes twice; every
    answer is one model's own ranking, whole, and both switches reach every thread."""
    v1, v2 = two
    known = {v: _exact(stack, v) for v in two}
    customers = sorted(set(known[v1][0]) & set(known[v2][0]))[:40]
    expected = {(v, c): _top(known[v], c, 5) for v in two for c in customers}
    answers: list[tuple[float, str]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def ask(n: int) -> None:
        rng = np.random.default_rng(n)
        while not stop.is_set():
            c = int(rng.choice(customers))
            try:
                rec = service.for_customer(c, None, PLAIN, [])
                assert [i["id"] for i in rec.items] == expected[(rec.model_version, c)], (rec.model_version, c)
                answers.append((time.monotonic(), rec.model_version))
            except BaseException as exc:  # every failure is counted
                failures.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        store, _ = open_artifacts(str(stack.artifacts))
        models.promote(stack.db, store, v1, keep=3)
        promoted_at = time.monotonic()
        time.sleep(1.5)
        back = models.rollback(stack.db)
        rolled_at = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert back.version == v2
    first_v1 = min(t for t, v in answers if v == v1 and t >= promoted_at)
    first_v2 = min(t for t, v in answers if v == v2 and t >= rolled_at)
    assert all(v == v1 for t, v in answers if first_v1 + 0.5 < t < rolled_at)  # every thread moved
    assert all(v == v2 for t, v in answers if t > first_v2 + 0.5)
    print(f"first answer from the promoted model after {first_v1 - promoted_at:.3f} s, "
          f"from the rolled-back one after {first_v2 - rolled_at:.3f} s, {len(answers)} answers")
