"""Every value that reaches a database is a bound parameter, never SQL: hostile text sent
through each input of the service and the CLI is treated as data (an unknown id, a 404, a
422), the tables are untouched, and nothing answers 500. The static side is ruff's S608 rule,
allowed only in modules that format identifiers from recpipe.contracts (pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.integration

HOSTILE = ["x'); DROP TABLE item_emb; --", "' OR '1'='1", "S10_1678' --", "\\'", "$$; DELETE FROM purchases; $$",
           "%(k)s", "%s", "1; SELECT pg_sleep(5)", '" OR ""="']


def _counts(stack: Stack) -> dict[str, int]:
    with psycopg.connect(stack.db.conninfo()) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("item_emb", "user_emb", "catalog", "purchases", "customers", "recpipe_vectors",
                          "recpipe_models", "recpipe_promotions", "recpipe_experiments")}


@pytest.fixture(scope="module")
def url(stack: Stack) -> Iterator[str]:
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    settings = stack.settings()
    with serving(create_app(settings, service=Service(settings))) as base:
        yield base


def test_hostile_values_are_data_in_every_service_input(url: str, stack: Stack) -> None:
    before = _counts(stack)
    for value in HOSTILE:
        answers = [
            httpx.get(f"{url}/items_from_item", params={"item_id": value}),
            httpx.get(f"{url}/recommendations/103", params={"exclude": value, "cart": value}),
            httpx.get(f"{url}/recommendations/103", params={"product_line": value}),
            httpx.get(f"{url}/recommendations/999999", params={"city": value, "country": value}),
            httpx.post(f"{url}/user_embeddings", json=[{"city": value, "country": value}]),
        ]
        page = [  # what the page at / reads
            httpx.get(f"{url}/customers", params={"q": value}),
            httpx.get(f"{url}/products", params={"q": value}),
            httpx.get(f"{url}/products", params={"ids": [value, "S10_1678"]}),
            httpx.get(f"{url}/products/{value}"),
        ]
        statuses = [a.status_code for a in answers]
        assert statuses[0] == 404, answers[0].text  # an unknown product, not "every product"
        assert statuses[1] == 200 and statuses[3] == 200 and statuses[4] == 200, [a.text for a in answers]
        assert statuses[2] == 404 and "not in the catalog" in answers[2].json()["error"]  # a line nobody has
        assert [a.status_code for a in page] == [200, 200, 200, 404], [a.text for a in page]
        assert page[0].json() == [] and page[1].json() == []  # nothing matches: not "every customer"
        assert [p["id"] for p in page[2].json()] == [p["id"] for p in httpx.get(
            f"{url}/products", params={"ids": "S10_1678"}).json()]
    assert _counts(stack) == before


def test_hostile_ids_on_the_command_line_are_data(stack: Stack) -> None:
    before = _counts(stack)
    env = {**os.environ, **stack.settings().environment()}
    for value in HOSTILE[:3]:
        done = subprocess.run([sys.executable, "-m", "recpipe", "vectors", "similar", value, "--json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2 and "has no embedding" in done.stderr, done.stderr
    assert _counts(stack) == before
