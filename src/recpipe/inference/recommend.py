"""The recommendation rules, on top of the model and the vector queries (numpy, no torch).

* Who, in this order (the answer's ``strategy``): ``session`` when the shopper's recent
  activity (given, or from the session store) holds a product with an embedding — their own
  vector moved toward what they are doing now (``inference.session``), or for a visitor that
  alone; ``stored``, a customer's stored embedding; ``features``, their features (given, or the
  loaded customers table's) through the user tower; ``popular`` with nothing the model knows,
  or when the rules ask for it (``Rules.popular``: a control list to compare the model with).
* What: candidates from pgvector, minus the cart, what the customer already bought, what the
  session already browsed and an explicit exclude list; out-of-stock items dropped unless
  asked for; an optional product line; at most N per product line; exactly k when the catalog
  has k that qualify.
* Items: similar items by embedding; a catalog product with no embedding yet (added after
  training) gets the most popular items of its product line; an unknown id is NotFound.
Every answer carries a recommendation_id and the model version.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from recpipe.contracts.events import Activity
from recpipe.contracts.limits import MAX_K
from recpipe.contracts.vectors import Scored
from recpipe.errors import NotFound, NotPublished
from recpipe.inference.model import Model, ModelSource
from recpipe.inference.session import codes
from recpipe.vectors.query import Filters, VectorQueries, check_product_line

MAX_FETCH = MAX_K  # candidates per query at most (the vector API's k limit)
VECTOR_CACHE = 100_000  # item embeddings kept in memory per load (a 32-d vector is ~250 bytes)


@dataclass(frozen=True)
class Rules:
    k: int = 10
    exclude: tuple[str, ...] = ()
    cart: tuple[str, ...] = ()
    exclude_bought: bool = True
    exclude_browsed: bool = True  # leave out what the session already browsed or carted
    in_stock: bool = True
    product_line: str | None = None
    max_per_line: int | None = None
    popular: bool = False  # the most bought products whatever the model knows: a control list

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
    strategy: str  # session | stored | features | popular | similar | product_line | embedding
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
    vectors: dict[str, Any] = field(default_factory=dict)  # item embeddings read so far (product code → vector)
    users: dict[int, Any] = field(default_factory=dict)  # stored customer embeddings read so far (None: none)


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
                     features: Mapping[str, Any] | None = None, rules: Rules = Rules(),
                     recent: Sequence[Activity] | None = None) -> Recommendation:
        """``recent``: the shopper's latest products, oldest first; None: the session store's
        for this customer (a visitor without it has none)."""
        shop = self.shop(q)
        model = self.model(q)
        check_product_line(rules.product_line, shop.lines)
        if recent is None:
            recent = q.recent("customer", customer_number)[0] if customer_number is not None else []
        skip = set(rules.exclude) | set(rules.cart) | (set(codes(recent)) if rules.exclude_browsed else set())
        filters = rules.filters
        if rules.exclude_bought and customer_number is not None and shop.popular:
            # "already bought" is checked inside the vector query: one round trip, not two
            filters = replace(filters, not_bought_by=customer_number)
        items: list[dict[str, Any]] | None = None
        strategy = "stored"
        if rules.popular:
            return self._popular_for(q, shop, model, rules, skip, filters)
        if recent:
            items = self._session(q, model, shop, customer_number, features, recent, rules, skip, filters)
            if items is not None:
                return Recommendation(model.version, "session", items)
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
            return self._popular_for(q, shop, model, rules, skip, filters)
        return Recommendation(model.version, strategy, items)

    def _popular_for(self, q: VectorQueries, shop: _Shop, model: Model, rules: Rules, skip: set[str],
                     filters: Filters) -> Recommendation:
        if filters.not_bought_by is not None:
            skip = skip | set(q.bought(filters.not_bought_by))
        return Recommendation(model.version, "popular", self._popular(shop, rules, skip))

    def for_session(self, q: VectorQueries, session_id: str, features: Mapping[str, Any] | None = None,
                    rules: Rules = Rules(), recent: Sequence[Activity] | None = None
                    ) -> tuple[Recommendation, int | None]:
        """A session's recommendations from its recent products (given, or the session store's)
        and the customer the store saw in it (None: a visitor the shop does not know)."""
        customer = None
        if recent is None:
            recent, customer = q.recent("session", session_id)
        return self.for_customer(q, customer, features, rules, recent), customer

    def _session(self, q: VectorQueries, model: Model, shop: _Shop, customer_number: int | None,
                 features: Mapping[str, Any] | None, recent: Sequence[Activity], rules: Rules, skip: set[str],
                 filters: Any) -> list[dict[str, Any]] | None:
        """The session strategy's items; None when no product of the session has an embedding."""
        vectors = self.item_vectors(q, shop, codes(recent))
        if not any(a.product_code in vectors for a in recent):
            return None
        own = None  # a visitor: what they do now says more than their city (the session alone)
        if customer_number is not None:
            own = self.user_vectors(q, shop, [customer_number]).get(customer_number)
            if own is None:  # known to the shop, not at training time: their features
                features = features or q.customer_features(customer_number)
                if features:
                    embedding, usable = model.user_embeddings([features])
                    own = embedding[0] if usable[0] else None
        vector = model.session.user_vector(own, recent, vectors)
        if vector is None:
            return None
        return self._collect(lambda n: q.items_for_embedding(vector, n, exclude=sorted(skip), filters=filters),
                             shop, rules)

    def user_vectors(self, q: VectorQueries, shop: _Shop, customers: Sequence[int]) -> dict[int, Any]:
        """The stored embeddings of ``customers`` who have one, read once per load of the vector
        database (one query for those not read yet)."""
        missing = sorted({c for c in customers if c not in shop.users})
        if missing:
            found = q.user_vectors(missing)
            if len(shop.users) > VECTOR_CACHE:
                shop.users.clear()
            for c in missing:
                shop.users[c] = found.get(c)
        return {c: shop.users[c] for c in customers if shop.users.get(c) is not None}

    def item_vectors(self, q: VectorQueries, shop: _Shop, wanted: Sequence[str]) -> dict[str, Any]:
        """The loaded embeddings of ``wanted`` products, read once per load of the vector database."""
        missing = [c for c in wanted if c not in shop.vectors]
        if missing:
            found = q.item_vectors(missing)
            if len(shop.vectors) > VECTOR_CACHE:
                shop.vectors.clear()
            for code in missing:
                shop.vectors[code] = found.get(code)
        return {c: shop.vectors[c] for c in wanted if shop.vectors.get(c) is not None}

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
