"""The recommendation rules, on top of the model and the vector queries (numpy, no torch).

* Who: a customer with a stored embedding uses it; otherwise their features (given, or the
  loaded customers table's) go through the user tower; with no usable features (nothing the model knows), popular items.
* What: candidates from pgvector, minus the cart, what the customer already bought and an
  explicit exclude list; out-of-stock items dropped unless asked for; an optional product
  line; at most N per product line; exactly k when the catalog has k that qualify.
* Items: similar items by embedding; a catalog product with no embedding yet (added after
  training) gets the most popular items of its product line; an unknown id is NotFound.
Every answer carries a recommendation_id and the model version.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from recpipe.contracts.limits import MAX_K
from recpipe.contracts.vectors import Scored
from recpipe.errors import NotFound, NotPublished
from recpipe.inference.model import Model, ModelSource
from recpipe.vectors.query import Filters, VectorQueries, check_product_line

MAX_FETCH = MAX_K  # candidates per query at most (the vector API's k limit)


@dataclass(frozen=True)
class Rules:
    k: int = 10
    exclude: tuple[str, ...] = ()
    cart: tuple[str, ...] = ()
    exclude_bought: bool = True
    in_stock: bool = True
    product_line: str | None = None
    max_per_line: int | None = None

    @property
    def filters(self) -> Filters:
        return Filters(in_stock=self.in_stock, product_line=self.product_line)

    @property
    def reachable(self) -> int:
        """How many items the rules can give at most: one product line capped at
        ``max_per_line`` gives no more than the cap, however many candidates are fetched."""
        if self.product_line is not None and self.max_per_line is not None:
            return min(self.k, self.max_per_line)
        return self.k

    @property
    def fetch(self) -> int:
        """Candidates to ask for: more when a per-line cap will drop some."""
        return min(MAX_FETCH, self.k * 5) if self.max_per_line else self.k


@dataclass
class Recommendation:
    model_version: str
    strategy: str  # stored | features | popular | similar | product_line | embedding
    items: list[dict[str, Any]]
    recommendation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self) -> dict[str, Any]:
        return {"recommendation_id": self.recommendation_id, "model_version": self.model_version,
                "strategy": self.strategy, "items": self.items}


@dataclass
class _Shop:
    """Catalog facts cached per load of the vector database."""

    loaded_at: Any = None
    popular: list[tuple[str, str | None, int | None, int]] = field(default_factory=list)
    line: dict[str, str | None] = field(default_factory=dict)
    checked: float = 0.0
    lines: list[str] = field(default_factory=list)  # every product line
    version: str | None = None  # the model whose embeddings are loaded
    model: Model | None = None  # its copy in the vector database


class Recommender:
    """``published``: the artifacts' latest model, used only when the vector database holds no
    copy of its model (loaded by an older recpipe) and the versions agree."""

    def __init__(self, published: ModelSource, *, check_every: float = 10.0) -> None:
        self.published = published
        self.check_every = check_every
        self._shop = _Shop()
        self._lock = threading.Lock()

    # -- customers -------------------------------------------------------------------------
    def for_customer(self, q: VectorQueries, customer_number: int | None,
                     features: Mapping[str, Any] | None = None, rules: Rules = Rules()) -> Recommendation:
        shop = self.shop(q)
        model = self.model(q)
        check_product_line(rules.product_line, shop.lines)
        skip = set(rules.exclude) | set(rules.cart)
        filters = rules.filters
        if rules.exclude_bought and customer_number is not None and shop.popular:
            # "already bought" is checked inside the vector query: one round trip, not two
            filters = replace(filters, not_bought_by=customer_number)
        items: list[dict[str, Any]] | None = None
        strategy = "stored"
        if customer_number is not None:
            items = self._collect(lambda n: q.items_for_user(customer_number, n, exclude=sorted(skip),
                                                             filters=filters), shop, rules)
        if items is None and not features and customer_number is not None:
            features = q.customer_features(customer_number)  # known to the shop, but not at training time
        if items is None and features:
            embedding, usable = model.user_embeddings([features])
            if usable[0]:
                strategy = "features"
                items = self._collect(lambda n: q.items_for_embedding(embedding[0], n, exclude=sorted(skip),
                                                                      filters=filters), shop, rules)
        if items is None:
            if filters.not_bought_by is not None:
                skip |= set(q.bought(filters.not_bought_by))
            return Recommendation(model.version, "popular", self._popular(shop, rules, skip))
        return Recommendation(model.version, strategy, items)

    # -- items ---------------------------------------------------------------------------------
    def similar_to_item(self, q: VectorQueries, item_id: str, rules: Rules = Rules()) -> Recommendation:
        shop = self.shop(q)
        model = self.model(q)
        check_product_line(rules.product_line, shop.lines)
        skip = set(rules.exclude) | set(rules.cart)
        items = self._collect(lambda n: q.similar_items(item_id, n, exclude=sorted(skip), filters=rules.filters),
                              shop, rules)
        if items is not None:
            return Recommendation(model.version, "similar", items)
        known = q.catalog_item(item_id)
        if known is None:
            raise NotFound(f"product {item_id!r} is not in the catalog",
                           hint="check the id; new products appear after `recpipe vectors load`")
        line = known[0]
        if rules.product_line is not None and rules.product_line != line:
            return Recommendation(model.version, "product_line", [])
        same_line = replace(rules, product_line=line)
        return Recommendation(model.version, "product_line", self._popular(shop, same_line, skip | {item_id}))

    # -- the loaded state ----------------------------------------------------------------------
    def model(self, q: VectorQueries) -> Model:
        """The model whose embeddings the vector database serves: a user tower and item vectors
        of different versions are never paired, whatever training has published since."""
        shop = self.shop(q)
        if shop.model is not None:
            return shop.model
        if shop.version is None:
            raise NotPublished(f"nothing is loaded in the vector database {q.db.url}",
                               hint="run `recpipe vectors load`")
        published = self.published.version()
        if published != shop.version:
            raise NotPublished(f"the vector database holds the embeddings of model {shop.version} but no copy of "
                               f"that model (loaded by an older recpipe); the artifacts hold model {published}",
                               hint="run `recpipe vectors load` to serve the published model")
        return self.published.get()

    def shop(self, q: VectorQueries) -> _Shop:
        """The catalog, popularity and model of the current load, checked every ``check_every`` s."""
        now = time.monotonic()
        if now - self._shop.checked < self.check_every:
            return self._shop
        with self._lock:
            if now - self._shop.checked >= self.check_every:
                loaded_at, _ = q.loaded()
                if loaded_at != self._shop.loaded_at or not self._shop.checked:
                    loaded_at, version, files = q.loaded_model()
                    model = Model.from_files(version, files.get, f"the vector database {q.db.url}") \
                        if files and version else None
                    popular = q.popularity()
                    self._shop = _Shop(loaded_at, popular, {r[0]: r[1] for r in popular}, version=version,
                                       model=model, lines=q.product_lines())
                self._shop.checked = now
        return self._shop

    def _collect(self, fetch: Callable[[int], list[Scored] | None], shop: _Shop, rules: Rules
                 ) -> list[dict[str, Any]] | None:
        """Candidates through the per-line cap; asks for more while the cap leaves fewer than k
        and more exist. None: the user/item has no embedding."""
        n = rules.fetch
        while True:
            found = fetch(n)
            if found is None:
                return None
            items = self._finish(found, shop, rules)
            if len(items) >= rules.reachable or len(found) < n or n >= MAX_FETCH:
                return items
            n = min(MAX_FETCH, n * 4)

    def _finish(self, found: list[Scored], shop: _Shop, rules: Rules) -> list[dict[str, Any]]:
        return _take(((s.id, s.score, shop.line.get(str(s.id))) for s in found), rules)

    def _popular(self, shop: _Shop, rules: Rules, skip: set[str]) -> list[dict[str, Any]]:
        top = (shop.popular[0][3] if shop.popular else 0) or 1  # most bought first
        return _take(((item, buyers / top, line) for item, line, stock, buyers in shop.popular
                      if item not in skip and (not rules.in_stock or (stock or 0) > 0)
                      and (rules.product_line is None or line == rules.product_line)), rules)


def _take(candidates: Iterable[tuple[Any, float, str | None]], rules: Rules) -> list[dict[str, Any]]:
    """The first k of (id, score, product line), best first, at most ``max_per_line`` per line."""
    out: list[dict[str, Any]] = []
    per_line: dict[str | None, int] = {}
    for item, score, line in candidates:
        if rules.max_per_line is not None:
            if per_line.get(line, 0) >= rules.max_per_line:
                continue
            per_line[line] = per_line.get(line, 0) + 1
        out.append({"id": item, "score": round(score, 6), "product_line": line})
        if len(out) == rules.k:
            break
    return out
