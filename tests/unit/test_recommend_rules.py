"""The recommendation rules (``inference/recommend.py``) on their own: the per-line cap and its
refill, exclusions, the fallbacks. The vector queries are an in-memory stand-in that records
what it was asked; tests/integration/test_service.py runs the same rules on pgvector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from recpipe.contracts.vectors import Scored
from recpipe.inference.recommend import MAX_FETCH, NotFound, Recommender, Rules, _take
from recpipe.vectors.query import Filters

# product -> (line, stock, buyers)
CATALOG = {
    "A1": ("Planes", 5, 90), "A2": ("Planes", 5, 80), "A3": ("Planes", 0, 70), "A4": ("Planes", 5, 60),
    "B1": ("Ships", 5, 50), "B2": ("Ships", 5, 40), "C1": ("Trains", 5, 30), "N1": ("Ships", 5, 1),
}


@dataclass
class Queries:
    """The VectorQueries calls the rules make, answered from lists; records each call."""

    ranked: dict[Any, list[str]] = field(default_factory=dict)  # customer or item -> products, best first
    purchases: dict[int, set[str]] = field(default_factory=dict)
    calls: list[tuple[str, int, tuple[str, ...], Filters]] = field(default_factory=list)

    def _answer(self, kind: str, key: Any, n: int, exclude: list[str], filters: Filters) -> list[Scored] | None:
        self.calls.append((kind, n, tuple(exclude), filters))
        if key not in self.ranked:
            return None
        keep = [p for p in self.ranked[key] if p not in exclude and p != key
                and (not filters.in_stock or CATALOG[p][1] > 0)
                and (filters.product_line is None or CATALOG[p][0] == filters.product_line)
                and p not in self.purchases.get(filters.not_bought_by, set())]  # type: ignore[arg-type]
        return [Scored(p, 1.0 - i / 100) for i, p in enumerate(keep[:n])]

    def items_for_user(self, customer: int, n: int, *, exclude: list[str], filters: Filters) -> list[Scored] | None:
        return self._answer("user", customer, n, exclude, filters)

    def items_for_embedding(self, embedding: np.ndarray, n: int, *, exclude: list[str],
                            filters: Filters) -> list[Scored] | None:
        return self._answer("embedding", "embedding", n, exclude, filters)

    def similar_items(self, item: str, n: int, *, exclude: list[str], filters: Filters) -> list[Scored] | None:
        return self._answer("item", item, n, exclude, filters)

    def catalog_item(self, item: str) -> tuple[str | None, int | None] | None:
        return (CATALOG[item][0], CATALOG[item][1]) if item in CATALOG else None

    def bought(self, customer: int) -> list[str]:
        return sorted(self.purchases.get(customer, set()))

    def recent(self, owner_kind: str, owner: Any) -> tuple[list[Any], int | None]:
        return [], None  # an empty session store

    def loaded(self) -> tuple[str, str]:
        return "load-1", "v-test"

    def model_files(self, version: str) -> tuple[None, dict[str, bytes]]:
        return None, {}  # no copy in the database: the published model, same version

    def experiment(self) -> None:
        return None

    def use(self, tables: Any) -> Queries:
        return self

    def product_lines(self) -> list[str]:
        return sorted({line for line, _, _ in CATALOG.values() if line})

    def popularity(self) -> list[tuple[str, str | None, int | None, int]]:
        return sorted(((p, line, stock, buyers) for p, (line, stock, buyers) in CATALOG.items()),
                      key=lambda r: -r[3])


class Model:
    version = "v-test"

    def user_embeddings(self, people: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        known = np.array([p.get("city") == "Nantes" for p in people])
        return np.ones((len(people), 32), np.float32), known


class Models:
    def version(self) -> str:
        return Model.version

    def get(self) -> Model:
        return Model()


def ids(rec: Any) -> list[str]:
    return [i["id"] for i in rec.items]


def test_take_caps_each_line_and_stops_at_k() -> None:
    candidates = [("A1", 0.9, "Planes"), ("A2", 0.8, "Planes"), ("A4", 0.7, "Planes"), ("B1", 0.6, "Ships"),
                  ("B2", 0.5, "Ships"), ("C1", 0.4, "Trains")]
    assert [i["id"] for i in _take(candidates, Rules(k=4, max_per_line=2))] == ["A1", "A2", "B1", "B2"]
    assert [i["id"] for i in _take(candidates, Rules(k=2))] == ["A1", "A2"]
    assert _take(candidates, Rules(k=3, max_per_line=1))[2] == {"id": "C1", "score": 0.4, "product_line": "Trains"}


def test_a_cap_asks_for_more_candidates_up_to_the_vector_limit() -> None:
    assert Rules(k=10).fetch == 10
    assert Rules(k=10, max_per_line=2).fetch == 50
    assert Rules(k=900, max_per_line=2).fetch == MAX_FETCH


def test_the_cap_refills_until_k_pass_or_the_catalog_runs_out() -> None:
    # 30 planes first, then a ship and a train: 15 candidates (k=3 × 5) hold one line only
    many = {f"P{i:02}": ("Planes", 5, 100 - i) for i in range(30)}
    CATALOG.update(many)
    try:
        q = Queries(ranked={7: [*many, "B1", "C1"]})
        rec = Recommender(Models(), check_every=60).for_customer(q, 7, rules=Rules(k=3, max_per_line=1))
        assert ids(rec) == ["P00", "B1", "C1"] and rec.strategy == "stored"
        assert [c[1] for c in q.calls] == [15, 60]  # asked again, four times as many
        short = Recommender(Models(), check_every=60).for_customer(
            Queries(ranked={7: list(many)}), 7, rules=Rules(k=3, max_per_line=1))
        assert ids(short) == ["P00"]  # fewer than k exist: what there is, no endless asking
    finally:
        for p in many:
            del CATALOG[p]


def test_cart_exclusions_and_purchases_are_left_out_in_the_query() -> None:
    q = Queries(ranked={7: ["A1", "A2", "A3", "A4", "B1", "B2", "C1"]}, purchases={7: {"A2"}})
    rec = Recommender(Models(), check_every=60).for_customer(
        q, 7, rules=Rules(k=3, exclude=("B1",), cart=("A1",)))
    assert ids(rec) == ["A4", "B2", "C1"]  # A3 is out of stock
    kind, n, exclude, filters = q.calls[0]
    assert (kind, n, exclude) == ("user", 3, ("A1", "B1"))
    assert filters == Filters(in_stock=True, product_line=None, not_bought_by=7)
    again = Recommender(Models(), check_every=60).for_customer(
        q, 7, rules=Rules(k=2, exclude_bought=False, in_stock=False, product_line="Planes"))
    assert ids(again) == ["A1", "A2"]


def test_without_a_stored_embedding_features_then_popularity() -> None:
    q = Queries(ranked={"embedding": ["C1", "B2"]}, purchases={9: {"A1"}})
    r = Recommender(Models(), check_every=60)
    by_features = r.for_customer(q, 9, {"city": "Nantes"}, Rules(k=2))
    assert (by_features.strategy, ids(by_features)) == ("features", ["C1", "B2"])
    popular = r.for_customer(q, 9, {"city": "Atlantis"}, Rules(k=3))
    assert popular.strategy == "popular"
    assert ids(popular) == ["A2", "A4", "B1"]  # most bought first; A1 bought, A3 out of stock
    assert [i["score"] for i in popular.items] == [round(80 / 90, 6), round(60 / 90, 6), round(50 / 90, 6)]
    assert popular.model_version == "v-test" and popular.recommendation_id


def test_similar_items_fall_back_to_the_product_line_and_unknown_ids_are_not_found() -> None:
    q = Queries(ranked={"A1": ["B1", "A2", "C1"]})
    r = Recommender(Models(), check_every=60)
    assert ids(r.similar_to_item(q, "A1", Rules(k=2))) == ["B1", "A2"]
    new = r.similar_to_item(q, "N1", Rules(k=5))  # in the catalog, no embedding yet
    assert (new.strategy, ids(new)) == ("product_line", ["B1", "B2"])
    assert ids(r.similar_to_item(q, "N1", Rules(product_line="Planes"))) == []
    with pytest.raises(NotFound, match="'ZZ' is not in the catalog"):
        r.similar_to_item(q, "ZZ")


def test_an_unknown_product_line_is_an_error_naming_the_known_ones() -> None:
    from recpipe.errors import InputError
    from recpipe.vectors.query import check_product_line

    check_product_line("Planes", ["Planes", "Ships"])
    check_product_line("Anything", [])  # nothing loaded to check against
    with pytest.raises(InputError) as wrong_case:
        check_product_line("planes", ["Planes", "Ships"])
    assert "did you mean 'Planes'?" in str(wrong_case.value) and "Planes, Ships" in str(wrong_case.value)
    with pytest.raises(InputError, match="'Rockets' is not in the catalog"):
        Recommender(Models(), check_every=60).for_customer(Queries(), 7, rules=Rules(product_line="Rockets"))


def test_a_model_of_another_version_than_the_loaded_vectors_is_never_served() -> None:
    from recpipe.errors import NotPublished

    class Newer:
        def version(self) -> str:
            return "v-newer"

        def get(self) -> Model:
            raise AssertionError("a model of another version is not even loaded")

    with pytest.raises(NotPublished, match="recpipe vectors load"):
        Recommender(Newer(), check_every=60).for_customer(Queries(), 7)


def test_a_capped_single_line_stops_at_the_cap_instead_of_fetching_the_catalog() -> None:
    """Regression (bench/soak.py): product_line plus max_per_line=2 can give 2 items at most; the
    refill loop asked for 50, 200, 800 and 1000 candidates trying to reach k=10."""
    many = {f"Q{i:02}": ("Ships", 5, 100 - i) for i in range(60)}
    CATALOG.update(many)
    try:
        q = Queries(ranked={7: list(many)})
        rec = Recommender(Models(), check_every=60).for_customer(
            q, 7, rules=Rules(k=10, product_line="Ships", max_per_line=2, exclude_bought=False))
        assert ids(rec) == ["Q00", "Q01"]
        assert [n for kind, n, _, _ in q.calls if kind == "user"] == [50]  # one fetch
    finally:
        for key in many:
            CATALOG.pop(key)
