"""The Spark engine (the Glue job's code) against the DuckDB engine, cell by cell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recpipe.adapters import open_lake, open_source
from recpipe.contracts.dataset import DATASET, QUARANTINE
from recpipe.errors import InputError
from recpipe.etl.pipeline import run as run_etl
from recpipe.jobs.glue_etl import source_url_from_jdbc
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from tests.support.etl import expected_training, read_training
from tests.unit.test_etl_duckdb import _break

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shop():
    return generate_shop(ShopSpec(customers=220, products=35, seed=17))


# every column: two copies of a duplicate pair differ only in their rating
ORDER = [("reason", "ascending"), ("productCode", "ascending"), ("customerNumber", "ascending"),
         ("productRating", "ascending")]


def _same_datasets(a: Path, b: Path) -> None:
    left, right = read_training(a / DATASET), read_training(b / DATASET)
    assert left.schema == right.schema
    assert left.equals(right)
    parts = lambda p: sorted(d.name for d in (p / DATASET).iterdir() if d.is_dir())  # noqa: E731
    assert parts(a) == parts(b)
    qa = pq.read_table(next((a / QUARANTINE).glob("*.parquet"))).sort_by(
        ORDER)
    qb = pq.read_table(next((b / QUARANTINE).glob("*.parquet"))).sort_by(
        ORDER)
    assert qa.to_pylist() == qb.to_pylist()


def test_spark_and_duckdb_agree_on_sqlite_even_with_broken_rows(spark, tmp_path: Path, shop) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    _break(tmp_path / "src.db")
    duck = run_etl(open_source(url), open_lake(str(tmp_path / "duck")), engine="duckdb")
    sparky = run_etl(open_source(url), open_lake(str(tmp_path / "spark")), engine="spark", spark=spark)
    _same_datasets(tmp_path / "duck", tmp_path / "spark")
    for key in ("rows", "partitions", "source_rows", "schema"):
        assert sparky.to_json()[key] == duck.to_json()[key], key
    assert sparky.quarantine.by_reason == duck.quarantine.by_reason != {}
    files = sorted((tmp_path / "spark" / DATASET).rglob("*"))
    assert not [f for f in files if f.name.endswith(".crc") or f.name == "_SUCCESS"]


def test_spark_writes_the_compact_layout_as_duckdb_does(spark, tmp_path: Path, shop,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from recpipe.etl import duckdb_engine, spark_engine
    from recpipe.training.reading import read_ratings

    for engine in (duckdb_engine, spark_engine):
        monkeypatch.setattr(engine, "COMPACT_ROWS", 1000)
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    duck = run_etl(open_source(url), open_lake(str(tmp_path / "duck")), engine="duckdb", layout="compact")
    sparky = run_etl(open_source(url), open_lake(str(tmp_path / "spark")), engine="spark", spark=spark,
                     layout="compact")
    assert sparky.format["layout"] == duck.format["layout"] == "compact" and sparky.rows == duck.rows
    files = sorted((tmp_path / "spark" / DATASET).glob("*.parquet"))
    assert len(files) == sparky.files == -(-sparky.rows // 1000)  # ranges of customers
    owners = [set(pq.read_table(f, columns=["customerNumber"])["customerNumber"].to_pylist()) for f in files]
    assert sum(len(o) for o in owners) == len(set().union(*owners))
    a, b = read_ratings(open_lake(str(tmp_path / "duck"))), read_ratings(open_lake(str(tmp_path / "spark")))
    assert a.users.equals(b.users) and a.items.equals(b.items)
    assert all((getattr(a, k) == getattr(b, k)).all() for k in ("user", "item", "rating", "order"))


def test_spark_reads_mariadb_over_jdbc(spark, mysql_url: str, tmp_path: Path, shop) -> None:
    write_shop(open_source(mysql_url), shop)
    run_etl(open_source(mysql_url), open_lake(str(tmp_path / "spark")), engine="spark", spark=spark)
    assert read_training(tmp_path / "spark" / DATASET).equals(expected_training(shop.tables))


def test_spark_refuses_duplicate_keys_like_duckdb(spark, tmp_path: Path, shop) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.executescript("CREATE TABLE p2 AS SELECT * FROM products; DROP TABLE products; "
                       "ALTER TABLE p2 RENAME TO products; "
                       "INSERT INTO products SELECT * FROM products LIMIT 1;")
    conn.close()
    with pytest.raises(InputError, match="products repeats the key"):
        run_etl(open_source(url), open_lake(str(tmp_path / "lake")), engine="spark", spark=spark)
    assert not (tmp_path / "lake" / DATASET).exists()


def test_the_glue_script_runs_under_spark_submit(tmp_path: Path, shop) -> None:
    submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent)) or shutil.which("spark-submit")
    if submit is None:
        pytest.fail("spark-submit not found beside the Python that runs the tests")
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    from tests.support.delivered import shop_of_edges

    shop_of_edges(tmp_path / "sink")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run(
        [submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false",
         "--jars", "/usr/share/java/sqlite-jdbc.jar",
         str(ROOT / "src" / "recpipe" / "jobs" / "glue_etl.py"),
         "--JOB_NAME", "local-test", "--source_url", url, "--lake_url", str(tmp_path / "lake"),
         "--recommendations_url", str(tmp_path / "sink")],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == shop.tables["ratings"].num_rows
    assert summary["events"] == {"objects": 3, "lines": 15, "events": 7, "impressions": 9, "quarantined": 5}
    assert read_training(tmp_path / "lake" / DATASET).equals(expected_training(shop.tables))


def test_glue_connection_settings_become_a_source_url() -> None:
    conf = {"url": "jdbc:mysql://db.example:3306", "fullUrl": "jdbc:mysql://db.example:3306/classicmodels",
            "user": "etl", "password": "p@ss/word"}
    assert source_url_from_jdbc(conf) == "mysql+pymysql://etl:p%40ss%2Fword@db.example:3306/classicmodels"


def test_spark_reads_the_online_datasets_as_duckdb_does(spark, tmp_path: Path) -> None:
    from recpipe.adapters import open_recommendations
    from recpipe.contracts.activity import EVENTS, EVENTS_QUARANTINE, IMPRESSIONS
    from recpipe.etl.online import read_online
    from recpipe.etl.online import run as run_online
    from tests.support.delivered import put, record, shop_of_edges

    sink = tmp_path / "sink"
    shop_of_edges(sink)
    lakes = {engine: open_lake(str(tmp_path / engine)) for engine in ("duckdb", "spark")}
    for engine, lake in lakes.items():
        run_online(open_recommendations(str(sink)), lake, engine=engine, spark=spark)
    put(sink, "2026/12/05/09", "recpipe-1-c", [record("e6", "s1", "2026-12-05T09:00:00Z",
                                                      [("S1", "browse", "r-0"), ("S6", "browse", "r-3")], "r-9")])
    manifests = {engine: run_online(open_recommendations(str(sink)), lake, engine=engine, spark=spark)
                 for engine, lake in lakes.items()}
    assert manifests["spark"].totals() == manifests["duckdb"].totals()
    for dataset in (EVENTS, IMPRESSIONS, EVENTS_QUARANTINE):
        duck, spark_rows = (read_online(lakes[e], dataset) for e in ("duckdb", "spark"))
        assert spark_rows.schema == duck.schema and spark_rows.num_rows > 0
        assert spark_rows.sort_by(duck.column_names[0]).equals(duck.sort_by(duck.column_names[0])), dataset
