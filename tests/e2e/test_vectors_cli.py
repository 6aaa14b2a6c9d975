"""``recpipe vectors`` as users run it, on the embedded PostgreSQL under RECPIPE_HOME."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import one_line_error, run
from tests.support.vectors import exact, write_artifacts

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    run("vectors", "stop", home=home)


def test_load_then_query_as_tables_and_json(home: Path) -> None:
    known = write_artifacts(home / "lake" / "ml-artifacts")
    loaded = run("vectors", "load", "--no-catalog", "--json", home=home)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["items"] == 300
    item = known.items[10]
    table = run("vectors", "similar", item, "-k", "5", "--ef-search", "200", home=home)
    assert table.returncode == 0, table.stderr
    assert f"items similar to {item}" in table.stdout
    got = json.loads(run("vectors", "similar", item, "-k", "5", "--ef-search", "200", "--json", home=home).stdout)
    want = exact(known.item_vectors[10], known, 5, skip={item})
    assert [g["id"] for g in got] == [w[0] for w in want] and set(got[0]) == {"id", "score"}
    assert got[0]["score"] == pytest.approx(want[0][1], abs=1e-5)
    user = json.loads(run("vectors", "for-user", str(known.users[0]), "-k", "3", "--in-stock", "--json",
                          home=home).stdout)
    assert len(user) == 3 and all(known.stock[known.items.index(u["id"])] > 0 for u in user)
    status = json.loads(run("vectors", "status", "--json", home=home).stdout)
    assert status["model_version"] == "v1" and status["items"] == 300


def test_unknown_ids_and_missing_artifacts_are_one_line_errors(home: Path) -> None:
    missing = run("vectors", "load", "--no-catalog", home=home)
    assert missing.returncode == 2 and "no embeddings/item_embeddings.csv in the artifacts" in one_line_error(missing)
    write_artifacts(home / "lake" / "ml-artifacts")
    assert run("vectors", "load", "--no-catalog", home=home).returncode == 0
    unknown = run("vectors", "similar", "NOPE", home=home)
    assert unknown.returncode == 2 and "product 'NOPE' has no embedding" in one_line_error(unknown)
    bad_url = run("vectors", "status", "--vectors-url", "mongodb://x", home=home)
    assert bad_url.returncode == 2 and "is not accepted for the vector store" in one_line_error(bad_url)
    # regression: a wrong-case or made-up product line was an empty answer with success
    for wrong in ("planes", "Rockets"):
        text = one_line_error(run("vectors", "similar", "S10_1000", "--product-line", wrong, home=home))
        assert f"product line {wrong!r} is not in the catalog" in text and "Planes" in text, text
    assert "did you mean 'Planes'?" in one_line_error(run("vectors", "for-user", "103", "--product-line", "planes",
                                                          home=home))
