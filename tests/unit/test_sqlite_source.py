"""The embedded SQLite source: bulk load, atomic builds, dumps and derived ratings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recpipe.adapters import open_source
from recpipe.contracts.source import TABLE_ORDER
from recpipe.errors import ConfigError, InputError, ServiceError
from recpipe.source.dump import load_dump, read_dump
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.source.ratings import add_ratings
from tests.support.compare import rows_from_arrow, rows_from_db

FIXTURE = Path(__file__).parent.parent / "fixtures" / "classicmodels_mini.sql"


@pytest.fixture
def shop():
    return generate_shop(ShopSpec(customers=150, products=40, seed=5))


def test_init_writes_every_row_exactly(tmp_path: Path, shop) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    counts = write_shop(open_source(url), shop)
    assert counts == shop.counts()
    for name in TABLE_ORDER:
        assert rows_from_db(url, name) == rows_from_arrow(shop.tables[name], name), name


def test_schema_keeps_the_sample_names_and_indexes(tmp_path: Path, shop) -> None:
    path = tmp_path / "src.db"
    write_shop(open_source(f"sqlite:///{path}"), shop)
    conn = sqlite3.connect(path)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(customers)")]
    assert cols[:3] == ["customerNumber", "customerName", "contactLastName"]
    types = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(products)")}
    assert types["buyPrice"] == "DECIMAL(10, 2)" and types["quantityInStock"] == "SMALLINT"
    indexes = {r[1] for r in conn.execute("SELECT * FROM sqlite_master WHERE type='index'")}
    assert {"productLine", "customerNumber", "productCode"} <= indexes
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_existing_database_needs_replace(tmp_path: Path, shop) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'src.db'}")
    write_shop(db, shop)
    with pytest.raises(InputError, match=r"already has table.*--replace"):
        write_shop(db, shop)
    other = generate_shop(ShopSpec(customers=20, products=10, seed=1))
    write_shop(db, other, replace=True)
    assert rows_from_db(db.url, "customers") == rows_from_arrow(other.tables["customers"], "customers")


def test_a_failed_build_leaves_the_old_database_untouched(tmp_path: Path, shop) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'src.db'}")
    write_shop(db, shop)
    before = rows_from_db(db.url, "ratings")
    broken = generate_shop(ShopSpec(customers=30, products=10, seed=2))
    broken.tables["ratings"] = broken.tables["ratings"].drop_columns(["productRating"])  # NOT NULL
    with pytest.raises(InputError, match="failed"):
        write_shop(db, broken, replace=True)
    assert rows_from_db(db.url, "ratings") == before
    assert [p.name for p in tmp_path.iterdir()] == ["src.db"], "no staging file left behind"


def test_a_failed_first_build_leaves_no_file(tmp_path: Path, shop) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'new.db'}")
    shop.tables["orders"] = shop.tables["orders"].drop_columns(["orderDate"])
    with pytest.raises(InputError, match="failed"):
        write_shop(db, shop)
    assert list(tmp_path.iterdir()) == []


def test_bad_urls_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a file"):
        open_source("sqlite://")
    with pytest.raises(ConfigError, match="scheme 'oracle' is not accepted for the source database"):
        open_source("oracle://u:p@h/db")
    with pytest.raises(ServiceError, match=r"does not exist.*recpipe source init"):
        open_source(f"sqlite:///{tmp_path / 'absent.db'}").engine()


def test_load_dump_then_add_ratings_gives_one_rating_per_purchased_pair(tmp_path: Path) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'cm.db'}")
    counts = load_dump(db, read_dump(FIXTURE))
    assert counts == {"customers": 8, "employees": 6, "offices": 4, "orderdetails": 14, "orders": 7,
                      "payments": 4, "productlines": 3, "products": 10}
    assert add_ratings(db, seed=1) == 12
    conn = sqlite3.connect(tmp_path / "cm.db")
    pairs = set(conn.execute("SELECT DISTINCT o.customerNumber, d.productCode FROM orders o "
                             "JOIN orderdetails d USING (orderNumber)"))
    rated = conn.execute("SELECT customerNumber, productCode, productRating FROM ratings").fetchall()
    assert {(c, p) for c, p, _ in rated} == pairs and len(rated) == len(pairs)
    assert all(1 <= r <= 5 for *_, r in rated)
    # escaped quotes and non-ASCII text survive the dialect translation
    names = {r[0] for r in conn.execute("SELECT customerName FROM customers")}
    assert "Sam's Diecast Ltd." in names and "Reykjavík Gjafir" in names
    assert conn.execute("SELECT comments FROM orders WHERE orderNumber = 10105").fetchone()[0] == \
        'Customer says "hurry; please"'


def test_add_ratings_is_seeded_and_refuses_to_overwrite(tmp_path: Path) -> None:
    db = open_source(f"sqlite:///{tmp_path / 'cm.db'}")
    load_dump(db, read_dump(FIXTURE))
    add_ratings(db, seed=9)
    first = rows_from_db(db.url, "ratings")
    with pytest.raises(InputError, match=r"already has table.*ratings"):
        add_ratings(db, seed=9)
    add_ratings(db, seed=9, replace=True)
    assert rows_from_db(db.url, "ratings") == first


def test_a_dump_that_is_not_classicmodels_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "blog.sql"
    other.write_text("CREATE TABLE posts (id int PRIMARY KEY, title varchar(20));\n"
                     "INSERT INTO posts VALUES (1, 'hello');\n")
    with pytest.raises(InputError) as err:
        read_dump(other)
    assert "is not a classicmodels dump" in str(err.value) and "customers" in str(err.value)
    garbage = tmp_path / "garbage.sql"
    garbage.write_text("this is not ( SQL at all;")
    with pytest.raises(InputError, match=r"not valid MySQL SQL|not a classicmodels dump"):
        read_dump(garbage)
    with pytest.raises(InputError, match="cannot read dump"):
        read_dump(tmp_path / "missing.sql")


def test_a_failed_dump_load_leaves_nothing(tmp_path: Path) -> None:
    text = FIXTURE.read_text().replace("(10106,'S24_3969',34,'33.00',2);",
                                       "(10106,'S24_3969',34,'33.00',2),(10106,'S24_3969',1,'1.00',3);")
    bad = tmp_path / "dup.sql"
    bad.write_text(text)
    db = open_source(f"sqlite:///{tmp_path / 'cm.db'}")
    with pytest.raises(InputError, match="UNIQUE"):
        load_dump(db, read_dump(bad))
    assert not (tmp_path / "cm.db").exists()
