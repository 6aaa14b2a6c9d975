"""The PostgreSQL source against a real PostgreSQL 16 (pgserver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recpipe.adapters import open_source
from recpipe.contracts.source import TABLE_ORDER
from recpipe.source.dump import load_dump, read_dump
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.source.ratings import add_ratings
from tests.support.compare import rows_from_arrow, rows_from_db

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).parent.parent / "fixtures" / "classicmodels_mini.sql"


def test_init_into_postgresql_gives_the_generated_rows(pg_url: str) -> None:
    shop = generate_shop(ShopSpec(customers=200, products=40, seed=6))
    write_shop(open_source(pg_url), shop)
    for name in TABLE_ORDER:
        assert rows_from_db(pg_url, name) == rows_from_arrow(shop.tables[name], name), name


def test_failed_build_rolls_back_everything(pg_url: str) -> None:
    db = open_source(pg_url)
    shop = generate_shop(ShopSpec(customers=30, products=10, seed=6))
    shop.tables["payments"] = shop.tables["payments"].drop_columns(["amount"])  # NOT NULL
    with pytest.raises(Exception, match="amount"):
        write_shop(db, shop)
    assert db.existing_tables() == set()


def test_dump_translated_into_postgresql(pg_url: str) -> None:
    db = open_source(pg_url)
    counts = load_dump(db, read_dump(FIXTURE))
    assert counts["customers"] == 8 and counts["products"] == 10
    assert add_ratings(db, seed=1) == 12
