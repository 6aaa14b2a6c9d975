"""The DuckDB engine from a SQLite source into a local lake: contract, quarantine, safety."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from recpipe.adapters import open_lake, open_source
from recpipe.contracts.dataset import DATASET, QUARANTINE, TRAINING_SCHEMA, DatasetManifest
from recpipe.errors import InputError
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from tests.support.etl import expected_training, read_training


@pytest.fixture(scope="module")
def shop():
    return generate_shop(ShopSpec(customers=300, products=50, seed=13))


@pytest.fixture
def source(tmp_path: Path, shop) -> str:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    return url


def test_dataset_is_the_contract_join_cell_by_cell(source: str, tmp_path: Path, shop) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    manifest = run_etl(open_source(source), lake)
    got = read_training(lake.location(DATASET))
    assert got.schema.names == TRAINING_SCHEMA.names
    assert [f.type for f in got.schema] == [f.type for f in TRAINING_SCHEMA]
    assert got.equals(expected_training(shop.tables))
    assert manifest.rows == got.num_rows == shop.tables["ratings"].num_rows
    assert manifest.quarantine.rows == 0


def test_layout_manifest_and_other_readers(source: str, tmp_path: Path, shop) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    manifest = run_etl(open_source(source), lake)
    root = tmp_path / "lake" / DATASET
    partitions = sorted(p for p in root.iterdir() if p.is_dir())
    assert all(p.name.startswith("customerNumber=") for p in partitions)
    assert len(partitions) == manifest.partitions == len(set(shop.tables["ratings"]["customerNumber"].to_pylist()))
    files = sorted(root.rglob("*.parquet"))
    assert all(f.name.startswith("part-") and f.parent.parent == root for f in files)
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    assert "customerNumber" not in pq.read_schema(files[0]).names  # it is the directory
    on_disk = json.loads((root / "_manifest.json").read_text())
    assert on_disk == DatasetManifest.read(lake).to_json() == manifest.to_json()
    for key in ("rows", "partitions", "schema", "source", "engine", "created_at", "quarantine"):
        assert key in on_disk
    assert manifest.generator is None  # no sidecar was written by this test
    count = duckdb.sql(f"SELECT COUNT(*), COUNT(DISTINCT customerNumber) FROM read_parquet("
                       f"'{root}/*/*.parquet', hive_partitioning = true)").fetchall()[0]
    assert count == (manifest.rows, manifest.partitions)
    assert not list((tmp_path / "lake" / "_staging").glob(f"{DATASET}-*")), "staging cleaned up"


@pytest.mark.parametrize("processes", [1, 2])
def test_the_compact_layout_holds_the_same_rows_in_few_files_of_whole_customers(
        source: str, tmp_path: Path, shop, monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    from recpipe.etl import duckdb_engine
    from recpipe.training.reading import read_ratings

    monkeypatch.setattr(duckdb_engine, "COMPACT_ROWS", 700)  # a few files of this small shop
    monkeypatch.setattr(duckdb_engine, "PARALLEL_FROM_ROWS", 0 if processes > 1 else 10**9)
    monkeypatch.setattr(duckdb_engine.os, "cpu_count", lambda: processes)
    compact = open_lake(str(tmp_path / "compact"))
    manifest = run_etl(open_source(source), compact, layout="compact")
    root = tmp_path / "compact" / DATASET
    files = sorted(root.glob("*.parquet"))
    assert manifest.format["layout"] == "compact" and manifest.files == len(files) and manifest.partitions == 0
    assert not [p for p in root.iterdir() if p.is_dir()]
    assert 3 <= len(files) < shop.tables["ratings"].num_rows // 500
    owners = [set(pq.read_table(f, columns=["customerNumber"])["customerNumber"].to_pylist()) for f in files]
    assert sum(len(o) for o in owners) == len(set().union(*owners))  # a customer lives in one file
    assert pq.read_schema(files[0]).names == TRAINING_SCHEMA.names  # customerNumber a column, first
    got = duckdb.sql(f"SELECT * FROM read_parquet('{root}/*.parquet') ORDER BY customerNumber, productCode").to_arrow_table()
    assert got.to_pylist() == expected_training(shop.tables).to_pylist()
    partitioned = open_lake(str(tmp_path / "partitioned"))
    run_etl(open_source(source), partitioned)
    a, b = read_ratings(compact), read_ratings(partitioned)  # training reads either layout alike
    assert a.users.equals(b.users) and a.items.equals(b.items)
    assert all((getattr(a, k) == getattr(b, k)).all() for k in ("user", "item", "rating", "order"))
    with pytest.raises(InputError, match="unknown dataset layout"):
        run_etl(open_source(source), compact, layout="bucketed")


def test_rerun_on_unchanged_source_gives_the_same_dataset(source: str, tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    first = run_etl(open_source(source), lake)
    second = run_etl(open_source(source), lake)
    assert first.fingerprint == second.fingerprint
    assert first.version != second.version


def _break(path: Path) -> None:
    """Rebuild ratings without its key and add one row per quarantine reason."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        ALTER TABLE ratings RENAME TO ratings_ok;
        CREATE TABLE ratings (customerNumber INT, productCode VARCHAR(15), productRating INT);
        INSERT INTO ratings SELECT * FROM ratings_ok;
        DROP TABLE ratings_ok;
    """)
    customer, product = conn.execute("SELECT customerNumber, productCode FROM ratings LIMIT 1").fetchone()
    other = conn.execute("SELECT productCode FROM products WHERE productCode NOT IN "
                         "(SELECT productCode FROM ratings WHERE customerNumber = ?) LIMIT 2",
                         (customer,)).fetchall()
    conn.executemany("INSERT INTO ratings VALUES (?, ?, ?)", [
        (None, product, 3),                    # null_key
        (customer, None, 3),                   # null_key
        (customer, other[0][0], 0),            # rating_out_of_range
        (customer, other[1][0], 9),            # rating_out_of_range
        (999_999, product, 4),                 # unknown_customer
        (customer, "S99_NOPE", 4),             # unknown_product
        (customer, product, 5),                # duplicate_pair (with the original row)
    ])
    conn.commit()
    conn.close()


def test_rows_that_break_the_contract_are_quarantined_not_dropped(source: str, tmp_path: Path, shop) -> None:
    _break(Path(source.removeprefix("sqlite:///")))
    lake = open_lake(str(tmp_path / "lake"))
    manifest = run_etl(open_source(source), lake)
    q = manifest.quarantine
    assert q.by_reason == {"duplicate_pair": 2, "null_key": 2, "rating_out_of_range": 2,
                           "unknown_customer": 1, "unknown_product": 1}
    total = shop.tables["ratings"].num_rows + 7
    assert manifest.rows + q.rows == total == manifest.source_rows["ratings"]
    quarantined = pq.read_table(tmp_path / "lake" / QUARANTINE / "part-0.parquet")
    assert quarantined.num_rows == 8
    assert sorted(quarantined["reason"].to_pylist()) == sorted(
        ["duplicate_pair"] * 2 + ["null_key"] * 2 + ["rating_out_of_range"] * 2
        + ["unknown_customer", "unknown_product"])
    assert set(quarantined["productRating"].to_pylist()) >= {0, 9}


def test_too_much_quarantine_fails_and_keeps_the_published_dataset(source: str, tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    before = run_etl(open_source(source), lake)
    files_before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "lake" / DATASET).rglob("*"))
    _break(Path(source.removeprefix("sqlite:///")))
    with pytest.raises(InputError, match=r"break the contract.*--max-quarantine-fraction 0\.0"):
        run_etl(open_source(source), lake, max_quarantine_fraction=0.0)
    assert DatasetManifest.read(lake) == before
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "lake" / DATASET).rglob("*")) == files_before


@pytest.mark.parametrize(("sql", "needle"), [
    ("DROP TABLE ratings", "has no table(s) ratings"),
    ("ALTER TABLE customers DROP COLUMN creditLimit", "source table customers has no column(s) creditLimit"),
    ("ALTER TABLE ratings RENAME TO r0; CREATE TABLE ratings (customerNumber INT, productCode TEXT, "
     "productRating VARCHAR(5)); DROP TABLE r0", "ratings.productRating is VARCHAR(5), expected an integer type"),
])
def test_a_broken_source_is_one_clear_error_and_publishes_nothing(source: str, tmp_path: Path, sql, needle) -> None:
    conn = sqlite3.connect(source.removeprefix("sqlite:///"))
    conn.executescript(f"PRAGMA foreign_keys = OFF; {sql};")
    conn.close()
    with pytest.raises(InputError) as err:
        run_etl(open_source(source), open_lake(str(tmp_path / "lake")))
    assert needle in str(err.value)
    assert not (tmp_path / "lake" / DATASET).exists()


def test_an_unwritable_lake_names_the_path(source: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="is not writable"):
        run_etl(open_source(source), open_lake(str(blocker / "lake")))


def test_duplicate_customer_keys_are_refused(source: str, tmp_path: Path) -> None:
    conn = sqlite3.connect(source.removeprefix("sqlite:///"))
    conn.executescript("""
        CREATE TABLE c2 AS SELECT * FROM customers; DROP TABLE customers;
        ALTER TABLE c2 RENAME TO customers;
        INSERT INTO customers SELECT * FROM customers WHERE customerNumber = 103;
    """)
    conn.close()
    with pytest.raises(InputError, match=r"customers repeats the key\(s\) \[103\]"):
        run_etl(open_source(source), open_lake(str(tmp_path / "lake")))


def _hostile(db: Path, shop) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Rows no typed column would hold, as a typeless (SQLite) or a loose source keeps them."""
    customer = shop.tables["customers"]["customerNumber"][0].as_py()
    codes = shop.tables["products"]["productCode"].to_pylist()
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM ratings WHERE customerNumber = ?", (customer,))
        c.executemany("INSERT INTO ratings VALUES (?, ?, ?)", [
            (customer, codes[0], 10**12), (customer, codes[1], 3.7), (customer, codes[2], "4 stars"),
            ("112abc", codes[3], 4), (3_000_000_000, codes[4], 4), (customer, "S10\x00_1", 4)])
        c.execute("UPDATE products SET quantityInStock = ? WHERE productCode = ?", (10**12, codes[5]))
        c.execute("INSERT INTO ratings VALUES (?, ?, 5)", (customer, codes[5]))
        raters = sorted(set(shop.tables["ratings"]["customerNumber"].to_pylist()) - {customer})
        other, third = raters[0], raters[1]
        c.execute("UPDATE customers SET creditLimit = -1e300 WHERE customerNumber = ?", (other,))
        c.execute("UPDATE customers SET creditLimit = 'lots' WHERE customerNumber = ?", (third,))
    return str(other), str(third)


def test_values_no_column_of_the_contract_holds_are_quarantined_with_the_sources_own_value(
        source: str, tmp_path: Path, shop) -> None:  # type: ignore[no-untyped-def]
    other, third = _hostile(Path(source.removeprefix("sqlite:///")), shop)
    lake = open_lake(str(tmp_path / "lake"))
    manifest = run_etl(open_source(source), lake, max_quarantine_fraction=0.5)
    q = pq.read_table(tmp_path / "lake" / QUARANTINE / "part-0.parquet").to_pylist()
    details = {(r["reason"], r["detail"]) for r in q}
    assert {("rating_out_of_range", "productRating = 1000000000000"), ("not_a_number", "productRating = 3.7"),
            ("not_a_number", "productRating = 4 stars"), ("not_a_number", "customerNumber = 112abc"),
            ("value_out_of_range", "customerNumber = 3000000000"), ("invalid_text", "productCode = S10\x00_1"),
            ("value_out_of_range", "quantityInStock = 1000000000000"),
            ("value_out_of_range", "creditLimit = -1e+300"), ("not_a_number", "creditLimit = lots")} <= details, details
    published = read_training(tmp_path / "lake" / DATASET)
    assert published.num_rows == manifest.rows
    customers = set(published["customerNumber"].to_pylist())
    assert int(other) not in customers and int(third) not in customers  # every rating of theirs set aside
    assert all(abs(v) <= 99_999_999.99 for v in published["creditLimit"].to_pylist() if v is not None)
