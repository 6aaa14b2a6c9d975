"""A source holding values no typed column would (issue: hardening): ``etl run``, ``train`` and
``vectors load`` each finish, the bad rows quarantined with the source's own value, nothing
coerced into a real customer or rating, and a NUL never reaching PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.test_cli import run

pytestmark = pytest.mark.e2e


def test_hostile_values_are_quarantined_and_every_stage_finishes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("source", "init", "--scale", "tiny", home=home).returncode == 0
    with sqlite3.connect(home / "source.db") as c:
        codes = [r[0] for r in c.execute("SELECT productCode FROM products ORDER BY productCode LIMIT 3")]
        raters = [r[0] for r in c.execute("SELECT DISTINCT customerNumber FROM ratings ORDER BY 1 LIMIT 3")]
        nul = "S99\x00_1"
        c.execute("INSERT INTO products SELECT ?, productName, productLine, productScale, productVendor, "
                  "productDescription, quantityInStock, buyPrice, MSRP FROM products WHERE productCode = ?",
                  (nul, codes[0]))
        c.execute("UPDATE customers SET creditLimit = -1e300 WHERE customerNumber = ?", (raters[1],))
        c.execute("UPDATE customers SET creditLimit = 'lots' WHERE customerNumber = ?", (raters[2],))
        c.execute("UPDATE products SET quantityInStock = ? WHERE productCode = ?", (10**12, codes[1]))
        c.execute("UPDATE ratings SET productRating = '4 stars' WHERE rowid = (SELECT min(rowid) FROM ratings)")
        c.execute("UPDATE ratings SET productRating = 3.7 WHERE rowid = (SELECT max(rowid) FROM ratings)")
        c.execute("INSERT INTO ratings VALUES (3000000000, ?, 4)", (codes[2],))
        c.execute("INSERT INTO ratings VALUES (?, ?, 4)", (raters[0], nul))
    etl = run("etl", "run", "--max-quarantine-fraction", "0.5", "--json", home=home)
    assert etl.returncode == 0, etl.stderr
    reasons = json.loads(etl.stdout)["quarantine"]["by_reason"]
    assert {"invalid_text", "value_out_of_range", "not_a_number"} <= set(reasons), reasons
    quarantine = pq.read_table(home / "lake" / "ratings_ml_training_quarantine" / "part-0.parquet").to_pylist()
    details = {r["detail"] for r in quarantine}
    assert {"productRating = 4 stars", "productRating = 3.7", "customerNumber = 3000000000",
            "creditLimit = lots", "creditLimit = -1e+300", "quantityInStock = 1000000000000"} <= details, details
    trained = run("train", "--max-epochs", "2", "--json", home=home)
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr
    loaded = run("vectors", "load", "--json", home=home)
    try:
        assert loaded.returncode == 0 and "Traceback" not in loaded.stderr, loaded.stderr
        found = run("vectors", "similar", codes[0], "-k", "3", "--json", home=home)
        assert found.returncode == 0, found.stderr
        page = run("vectors", "status", "--json", home=home)
        assert page.returncode == 0, page.stderr
    finally:
        run("vectors", "stop", home=home)
