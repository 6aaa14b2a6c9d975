"""The vector database for real: the embedded PostgreSQL (pgserver) and a separately started
one addressed by a postgresql:// URL go through the same loader and queries."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from recpipe.adapters import open_artifacts, open_vectors
from recpipe.contracts.models import ModelTables, slug
from recpipe.errors import InputError, ServiceError
from recpipe.vectors import pipeline as load_module
from recpipe.vectors.pipeline import LoadResult, loaded
from recpipe.vectors.pipeline import run as load_vectors
from recpipe.vectors.query import Filters, VectorQueries
from tests.support.vectors import exact, write_artifacts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    db = open_vectors(f"pgserver://{tmp_path_factory.mktemp('emb')}/pg")
    db.conninfo()  # starts it
    yield db
    assert db.stop()


@pytest.fixture(params=["embedded", "url"])
def vdb(request: pytest.FixtureRequest, embedded: object) -> object:
    if request.param == "embedded":
        with psycopg.connect(embedded.conninfo(), autocommit=True) as c:  # type: ignore[attr-defined]
            c.execute("DROP SCHEMA public CASCADE")  # every model's tables, the views, the bookkeeping
            c.execute("CREATE SCHEMA public")
        return embedded
    pg_server = request.getfixturevalue("pg_server")
    name = f"v_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return open_vectors(pg_server.get_uri(name))


def _load(vdb: object, root: Path) -> LoadResult:
    store, name = open_artifacts(str(root))
    return load_vectors(vdb, store, name)  # type: ignore[arg-type]


def _tables(vdb: object) -> set[str]:
    with psycopg.connect(vdb.conninfo()) as c:  # type: ignore[attr-defined]
        return {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


BOOKKEEPING = {"recpipe_vectors", "recpipe_models", "recpipe_promotions", "recpipe_experiments"}


def _layout(*versions: str) -> set[str]:
    """The tables of a database with these models loaded (``contracts.models``)."""
    return BOOKKEEPING | {t for v in versions for t in (lambda m: (m.items, m.users, m.files))(ModelTables.of(v, slug(v)))}


def test_load_builds_the_tables_and_hnsw_indexes(vdb: object, tmp_path: Path) -> None:
    known = write_artifacts(tmp_path / "art")
    result = _load(vdb, tmp_path / "art")
    assert (result.items, result.users, result.model_version) == (300, 40, "v1")
    assert _tables(vdb) == _layout("v1")
    t = ModelTables.of("v1", slug("v1"))
    with psycopg.connect(vdb.conninfo()) as c:  # type: ignore[attr-defined]
        defs = {r[0]: r[1] for r in c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public'")}
        row = c.execute("SELECT product_line, quantity_in_stock FROM item_emb WHERE id = %s", (known.items[7],)).fetchone()
        views = {r[0] for r in c.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
        c.execute("SET enable_seqscan = off")  # 300 rows: the planner would rather scan
        plan = "\n".join(r[0] for r in c.execute(  # the seed's name, a view, still ranks by the index
            "EXPLAIN SELECT id FROM item_emb ORDER BY embedding <=> %s::vector LIMIT 5",
            (str(known.item_vectors[0].tolist()),)))
    assert views == {"item_emb", "user_emb"}
    assert "hnsw" in defs[f"{t.items}_hnsw"] and "vector_cosine_ops" in defs[f"{t.items}_hnsw"]
    assert "hnsw" in defs[f"{t.users}_hnsw"] and f"{t.items}_line" in defs
    assert f"Index Scan using {t.items}_hnsw" in plan
    assert row == (known.lines[7], known.stock[7])
    assert loaded(vdb)["model_version"] == "v1"  # type: ignore[arg-type,index]
    again = _load(vdb, tmp_path / "art")  # repeatable
    assert again.items == 300 and _tables(vdb) == _layout("v1") and loaded(vdb)["model_version"] == "v1"  # type: ignore[index]


def _ids(found: list) -> list:  # type: ignore[type-arg]
    return [s.id for s in found]


def test_queries_agree_with_exact_search(vdb: object, tmp_path: Path) -> None:
    known = write_artifacts(tmp_path / "art")
    _load(vdb, tmp_path / "art")
    with VectorQueries(vdb, ef_search=300) as q:  # type: ignore[arg-type]
        for row in (0, 5, 77):
            item = known.items[row]
            got = q.similar_items(item, 10)
            want = exact(known.item_vectors[row], known, 10, skip={item})
            assert item not in _ids(got) and _ids(got) == [w[0] for w in want]
            assert np.allclose([s.score for s in got], [w[1] for w in want], atol=1e-5)
        user = known.users[3]
        by_id = q.items_for_user(user, 8)
        by_vec = q.items_for_embedding(known.user_vectors[3], 8)
        assert by_id == by_vec and _ids(by_id) == [w[0] for w in exact(known.user_vectors[3], known, 8)]
        assert q.similar_items("NOPE", 5) is None and q.items_for_user(99999, 5) is None
        many = q.similar_items_many([known.items[0], "NOPE", known.items[5]], 10)
        assert many == [q.similar_items(known.items[0], 10), None, q.similar_items(known.items[5], 10)]
        users = q.items_for_users([known.users[0], known.users[1]], 4)
        assert users == [q.items_for_user(known.users[0], 4), q.items_for_user(known.users[1], 4)]


def test_filters_and_exclusions_still_return_k(vdb: object, tmp_path: Path) -> None:
    known = write_artifacts(tmp_path / "art", items=600)
    _load(vdb, tmp_path / "art")
    with VectorQueries(vdb, ef_search=10) as q:  # a narrow search: the retry must fill k
        base = known.items[3]
        skip = set(_ids(q.similar_items(base, 5)))
        got = q.similar_items(base, 10, exclude=sorted(skip), filters=Filters(in_stock=True, product_line="Ships"))
        want = exact(known.item_vectors[3], known, 10, skip=skip | {base}, in_stock=True, line="Ships")
        assert _ids(got) == [w[0] for w in want] and len(got) == 10
        assert not skip & set(_ids(got))
        assert q.similar_items(base, 5, filters=Filters(product_line="No such line")) == []


def test_each_key_of_a_batch_skips_its_own_codes(vdb: object, tmp_path: Path) -> None:
    known = write_artifacts(tmp_path / "art", items=600)
    _load(vdb, tmp_path / "art")
    with VectorQueries(vdb, ef_search=10) as q:
        a, b = known.items[3], known.items[4]
        first = {key: _ids(q.similar_items(key, 6)) for key in (a, b)}
        skips = [first[a][:5], []]  # a's five best are skipped, b skips nothing
        got = q.similar_items_many([a, b], 10, filters=Filters(in_stock=True), skip_each=skips)
        assert _ids(got[0]) == [w[0] for w in exact(known.item_vectors[3], known, 10, skip={a, *skips[0]},
                                                     in_stock=True)]
        assert _ids(got[1]) == [w[0] for w in exact(known.item_vectors[4], known, 10, skip={b}, in_stock=True)]
        vectors = q.items_for_embeddings(known.item_vectors[[3, 4]], 3, skip_each=[[a], [b]])
        assert a not in _ids(vectors[0]) and b not in _ids(vectors[1]) and len(vectors[0]) == 3
        users = q.items_for_users([known.users[0]] * 2, 4, skip_each=[[], _ids(q.items_for_user(known.users[0], 2))])
        assert _ids(users[1]) == [i for i in _ids(q.items_for_user(known.users[0], 6)) if i not in _ids(users[0])[:2]][:4]


def test_equal_scores_are_ordered_by_id(vdb: object, tmp_path: Path) -> None:
    known = write_artifacts(tmp_path / "art", items=40)
    root = tmp_path / "art"
    # three copies of item 0's vector under other ids: equal scores against any query
    from recpipe.training.artifacts import ITEM_EMBEDDINGS, write_embeddings

    ids = [*known.items, "Z_TIE", "A_TIE", "M_TIE"]
    write_embeddings(root / ITEM_EMBEDDINGS, ids, np.vstack([known.item_vectors, np.repeat(known.item_vectors[:1], 3, 0)]))
    _load(vdb, root)
    with VectorQueries(vdb, ef_search=100) as q:  # type: ignore[arg-type]
        got = q.similar_items(known.items[0], 3)
    assert _ids(got) == ["A_TIE", "M_TIE", "Z_TIE"]


def test_a_running_query_keeps_the_old_data_and_a_failed_load_changes_nothing(
        vdb: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = write_artifacts(tmp_path / "v1", version="v1")
    new = write_artifacts(tmp_path / "v2", seed=1, version="v2")
    _load(vdb, tmp_path / "v1")
    item = old.items[4]
    seen: list[float] = []
    reader_started = threading.Event()

    def reader() -> None:  # one transaction: two reads, a second apart, while the load runs
        with psycopg.connect(vdb.conninfo()) as c, c.transaction():  # type: ignore[attr-defined]
            seen.append(c.execute("SELECT (embedding::real[])[1] FROM item_emb WHERE id = %s", (item,)).fetchone()[0])
            reader_started.set()
            time.sleep(1.0)
            seen.append(c.execute("SELECT (embedding::real[])[1] FROM item_emb WHERE id = %s", (item,)).fetchone()[0])

    t = threading.Thread(target=reader)
    t.start()
    reader_started.wait(10)
    _load(vdb, tmp_path / "v2")  # waits for the reader's transaction at the switch
    t.join()
    assert seen == pytest.approx([float(old.item_vectors[4][0])] * 2, abs=1e-6)
    with psycopg.connect(vdb.conninfo()) as c:  # type: ignore[attr-defined]
        now = c.execute("SELECT (embedding::real[])[1] FROM item_emb WHERE id = %s", (item,)).fetchone()[0]
    assert now == pytest.approx(float(new.item_vectors[4][0]), abs=1e-6)

    # a failure after the new tables exist: the switch never happens, nothing is left behind
    monkeypatch.setattr(load_module.schema, "hnsw_index", lambda table, index: "SELECT no_such_function()")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        _load(vdb, tmp_path / "v1")
    assert loaded(vdb)["model_version"] == "v2"  # type: ignore[arg-type,index]
    assert _tables(vdb) == _layout("v1", "v2")


@pytest.mark.parametrize("problem", ["dimension", "malformed", "duplicate"])
def test_bad_files_are_refused_before_the_database_is_touched(vdb: object, tmp_path: Path, problem: str) -> None:
    from recpipe.training.artifacts import ITEM_EMBEDDINGS

    write_artifacts(tmp_path / "good")
    _load(vdb, tmp_path / "good")
    known = write_artifacts(tmp_path / "bad", seed=3, version="bad")
    path = tmp_path / "bad" / ITEM_EMBEDDINGS
    lines = path.read_text().splitlines()
    if problem == "dimension":
        lines[5] = lines[5][: lines[5].rindex(",")] + ']"'
    elif problem == "malformed":
        lines[5] = f'"{known.items[4]}","not a vector"'
    else:
        lines.append(lines[3])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        _load(vdb, tmp_path / "bad")
    assert {"dimension": "dimensions", "malformed": "is not a vector", "duplicate": "more than once"}[problem] \
        in str(err.value)
    assert loaded(vdb)["model_version"] == "v1"  # type: ignore[arg-type,index]


def test_a_postgres_without_pgvector_says_how_to_get_it(plain_pg_url: str, tmp_path: Path) -> None:
    write_artifacts(tmp_path / "art")
    with pytest.raises(ServiceError) as err:
        _load(open_vectors(plain_pg_url), tmp_path / "art")
    assert "has no pgvector extension" in str(err.value) and "postgresql-16-pgvector" in err.value.hint


def test_an_unreachable_server_is_a_service_error() -> None:
    from tests.support.mariadb import free_port

    with pytest.raises(ServiceError, match="cannot connect to the vector database"):
        VectorQueries(open_vectors(f"postgresql://u:secret@127.0.0.1:{free_port()}/db"))


def test_load_from_s3_artifacts(embedded: object, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    known = write_artifacts(tmp_path / "art", version="from-s3")
    s3 = boto3.client("s3")
    for path in (tmp_path / "art").rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), s3_bucket, f"ml-artifacts/{path.relative_to(tmp_path / 'art').as_posix()}")
    store, name = open_artifacts(f"s3://{s3_bucket}/ml-artifacts")
    result = load_vectors(embedded, store, name)  # type: ignore[arg-type]
    assert (result.items, result.model_version) == (300, "from-s3")
    with VectorQueries(embedded, ef_search=300) as q:  # type: ignore[arg-type]
        got = q.similar_items(known.items[2], 5)
    assert _ids(got) == [w[0] for w in exact(known.item_vectors[2], known, 5, skip={known.items[2]})]


def test_the_catalog_and_purchases_come_from_the_source(embedded: object, tmp_path: Path) -> None:
    from recpipe.adapters import open_source
    from recpipe.source.generate import ShopSpec, generate_shop
    from recpipe.source.load import write_shop

    shop = generate_shop(ShopSpec(customers=60, products=25, seed=4))
    db = open_source(f"sqlite:///{tmp_path / 'src.db'}")
    write_shop(db, shop)
    write_artifacts(tmp_path / "art")
    store, name = open_artifacts(str(tmp_path / "art"))
    result = load_vectors(embedded, store, name, source=db)  # type: ignore[arg-type]
    orders = shop.tables["orders"].select(["orderNumber", "customerNumber"])
    pairs = shop.tables["orderdetails"].join(orders, "orderNumber").select(["customerNumber", "productCode"])
    expected = {(r["customerNumber"], r["productCode"]) for r in pairs.to_pylist()}
    with psycopg.connect(embedded.conninfo()) as c:  # type: ignore[attr-defined]
        got = set(c.execute("SELECT customer_number, product_code FROM purchases").fetchall())
        catalog = c.execute("SELECT count(*), count(*) FILTER (WHERE quantity_in_stock IS NULL) FROM catalog").fetchone()
    assert got == expected and result.purchases == len(expected)
    assert catalog == (shop.tables["products"].num_rows, 0) == (result.catalog, 0)
    # the items' filter attributes come from the (fresher) source catalog, not the artifacts
    products = {r["productCode"]: (r["productLine"], r["quantityInStock"]) for r in shop.tables["products"].to_pylist()}
    with psycopg.connect(embedded.conninfo()) as c:  # type: ignore[attr-defined]
        rows = c.execute("SELECT id, product_line, quantity_in_stock FROM item_emb").fetchall()
    assert all(products.get(i, (None, None)) == (line, stock) for i, line, stock in rows)
    assert loaded(embedded)["catalog"] == result.catalog  # type: ignore[arg-type,index]
