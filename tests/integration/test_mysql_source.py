"""The MySQL/MariaDB source against a real, private MariaDB server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recpipe.adapters import open_source
from recpipe.contracts.source import TABLE_ORDER
from recpipe.errors import InputError, ServiceError
from recpipe.source.dump import load_dump, read_dump
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.source.ratings import add_ratings
from tests.support.compare import rows_from_arrow, rows_from_db

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).parent.parent / "fixtures" / "classicmodels_mini.sql"


def test_same_seed_gives_identical_rows_in_sqlite_and_mariadb(mysql_url: str, tmp_path: Path) -> None:
    spec = ShopSpec(customers=400, products=60, seed=2024)
    sqlite_url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(sqlite_url), generate_shop(spec))
    write_shop(open_source(mysql_url), generate_shop(spec))
    for name in TABLE_ORDER:
        assert rows_from_db(mysql_url, name) == rows_from_db(sqlite_url, name), name


def test_mariadb_keeps_the_sample_types(mysql_url: str, mariadb_server) -> None:
    write_shop(open_source(mysql_url), generate_shop(ShopSpec(customers=30, products=10)))
    database = mysql_url.rsplit("/", 1)[1]
    ddl = mariadb_server.admin(f"SHOW CREATE TABLE `{database}`.`products`")
    assert "`quantityInStock` smallint(6) NOT NULL" in ddl
    assert "`buyPrice` decimal(10,2) NOT NULL" in ddl
    assert "FOREIGN KEY (`productLine`) REFERENCES `productlines`" in ddl
    cities = mariadb_server.admin(f"SELECT DISTINCT city FROM `{database}`.customers")
    assert any(not c.isascii() for c in cities.split())


def test_replace_and_refusal(mysql_url: str) -> None:
    db = open_source(mysql_url)
    write_shop(db, generate_shop(ShopSpec(customers=30, products=10, seed=1)))
    with pytest.raises(InputError, match=r"already has table.*--replace"):
        write_shop(db, generate_shop(ShopSpec(customers=30, products=10, seed=1)))
    other = generate_shop(ShopSpec(customers=12, products=5, seed=3))
    write_shop(db, other, replace=True)
    assert rows_from_db(mysql_url, "customers") == rows_from_arrow(other.tables["customers"], "customers")


def test_a_failed_build_leaves_no_table(mysql_url: str) -> None:
    db = open_source(mysql_url)
    shop = generate_shop(ShopSpec(customers=40, products=10, seed=4))
    # a rating that does not fit the column: LOAD DATA would only warn; recpipe refuses
    bad = shop.tables["ratings"].to_pylist()
    bad[3]["productRating"] = "five"
    import pyarrow as pa

    shop.tables["ratings"] = pa.Table.from_pylist(
        [{**r, "productRating": str(r["productRating"])} for r in bad])
    with pytest.raises(InputError, match=r"loading table 'ratings'.*warning"):
        write_shop(db, shop)
    assert db.existing_tables() == set()


def test_connection_problems_are_one_clear_line(mariadb_server, mysql_url: str) -> None:
    wrong_password = mysql_url.replace(":recpipe-test-pw@", ":nope@")
    with pytest.raises(ServiceError) as err:
        open_source(wrong_password).existing_tables()
    assert "wrong user or password" in str(err.value) and "nope" not in str(err.value)
    missing_db = mysql_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(ServiceError, match=r"does not exist.*CREATE DATABASE"):
        open_source(missing_db).existing_tables()
    with pytest.raises(ServiceError, match="cannot reach"):
        open_source("mysql+pymysql://u:p@127.0.0.1:1/x").existing_tables()


def test_load_dump_natively_then_add_ratings(mysql_url: str) -> None:
    db = open_source(mysql_url)
    counts = load_dump(db, read_dump(FIXTURE))
    assert counts["orderdetails"] == 14 and counts["customers"] == 8
    assert add_ratings(db, seed=1) == 12
    rated = rows_from_db(mysql_url, "ratings")
    assert len(rated) == 12 and all(1 <= r[2] <= 5 for r in rated)


def test_mysqldump_output_loads_into_sqlite_and_mariadb(
        mariadb_server, mysql_url: str, tmp_path: Path) -> None:
    """A real dump made by mariadb-dump of a synthetic shop round-trips into both backends."""
    if not hasattr(mariadb_server, "datadir"):
        pytest.skip("needs the private test server's socket for mariadb-dump")
    shop = generate_shop(ShopSpec(customers=120, products=30, seed=8))
    write_shop(open_source(mysql_url), shop)
    database = mysql_url.rsplit("/", 1)[1]
    dump = tmp_path / "dump.sql"
    with dump.open("w") as out:
        subprocess.run(["mariadb-dump", "--no-defaults", f"--socket={mariadb_server.datadir / 'mysqld.sock'}",
                        "-uroot", "--skip-dump-date", database, *TABLE_ORDER[:-1]],
                       stdout=out, check=True)
    sqlite_url = f"sqlite:///{tmp_path / 'from-dump.db'}"
    load_dump(open_source(sqlite_url), read_dump(dump))
    target = mariadb_server.create_database(f"{database}_copy")
    load_dump(open_source(target), read_dump(dump))
    for name in TABLE_ORDER[:-1]:
        expected = rows_from_arrow(shop.tables[name], name)
        assert rows_from_db(sqlite_url, name) == expected, name
        assert rows_from_db(target, name) == expected, name
    add_ratings(open_source(sqlite_url), seed=3)
    add_ratings(open_source(target), seed=3)
    assert rows_from_db(sqlite_url, "ratings") == rows_from_db(target, "ratings")
    assert len(rows_from_db(target, "ratings")) == shop.tables["ratings"].num_rows
