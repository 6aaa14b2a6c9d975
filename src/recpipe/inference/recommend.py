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
* Which model: the serving one, or, while an experiment runs, the shopper's variant's
  (``contracts.models.Experiment.assign``: by customer number, a visitor by session); a
  ``popularity`` variant gets the ``popular`` list. Each request reads one loaded model's tables
  and runs that model's towers: answers are never mixed, whatever is promoted meanwhile.
Every answer carries a recommendation_id, the model version and its variant (None: no experiment).
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
from recpipe.contracts.models import Experiment, ModelTables, Variant
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
    variant: str | None = None  # the experiment's variant the shopper is in (None: no experiment)

    def to_json(self) -> dict[str, Any]:
        return {"recommendation_id": self.recommendation_id, "model_version": self.model_version,
                "strategy": self.strategy, "variant": self.variant, "items": self.items}


@dataclass
class Served:
    """One loaded model as served: its tables, its towers, and what was read of its vectors."""

    version: str
    tables: ModelTables | None  # None: a database loaded before models were versioned (plain tables)
    model: Model | None  # its copy in the vector database (None: loaded without one)
    vectors: dict[str, Any] = field(default_factory=dict)  # item embeddings read so far (product code → vector)
    users: dict[int, Any] = field(default_factory=dict)  # stored customer embeddings read so far (None: none)


@dataclass
class _Shop:
    """What serving reads of the vector database, cached per load, promotion and experiment."""

    loaded_at: Any = None
    popular: list[tuple[str, str | None, int | None, int]] = field(default_factory=list)
    line: dict[str, str | None] = field(default_factory=dict)
    checked: float = 0.0
    lines: list[str] = field(default_factory=list)  # every product line
    version: str | None = None  # the serving model
    served: dict[str, Served] = field(default_factory=dict)  # the serving model and the experiment's
    experiment: Experiment | None = None  # the running one

    @property
    def serving(self) -> Served | None:
        return None if self.version is None else self.served.get(self.version)


class Recommender:
    """``published``: the artifacts' latest model, used only when the vector database holds no
    copy of its model (loaded by an older recpipe) and the versions agree. ``check_every``: how
    often (s) to look for a load, a promotion or an experiment."""

    def __init__(self, published: ModelSource, *, check_every: float = 1.0) -> None:
        self.published = published
        self.check_every = check_every
        self._shop = _Shop()
        self._lock = threading.Lock()

    # -- customers -------------------------------------------------------------------------
    def for_customer(self, q: VectorQueries, customer_number: int | None,
                     features: Mapping[str, Any] | None = None, rules: Rules = Rules(),
                     recent: Sequence[Activity] | None = None, *, session: str | None = None) -> Recommendation:
        """``recent``: the shopper's latest products, oldest first; None: the session store's
        for this customer (a visitor without it has none). ``session``: assigns a visitor to an
        experiment's variant."""
        shop = self.shop(q)
        # a list asked for as popular (a control of the caller's own) is outside any experiment
        unit = None if rules.popular else customer_number if customer_number is not None else session
        served, variant = self.choose(q, shop, unit)
        rec = self._for_customer(q, shop, served, customer_number, features,
                                 replace(rules, popular=True) if variant is not None and variant.popularity else rules,
                                 recent)
        rec.variant = None if variant is None else variant.name
        return rec

    def _for_customer(self, q: VectorQueries, shop: _Shop, served: Served, customer_number: int | None,
                      features: Mapping[str, Any] | None, rules: Rules,
                      recent: Sequence[Activity] | None) -> Recommendation:
        model = self.model_of(served)
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
            items = self._session(q, model, shop, served, customer_number, features, recent, rules, skip, filters)
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
        return self.for_customer(q, customer, features, rules, recent, session=session_id), customer

    def _session(self, q: VectorQueries, model: Model, shop: _Shop, served: Served, customer_number: int | None,
                 features: Mapping[str, Any] | None, recent: Sequence[Activity], rules: Rules, skip: set[str],
                 filters: Any) -> list[dict[str, Any]] | None:
        """The session strategy's items; None when no product of the session has an embedding."""
        vectors = self.item_vectors(q, served, codes(recent))
        if not any(a.product_code in vectors for a in recent):
            return None
        own = None  # a visitor: what they do now says more than their city (the session alone)
        if customer_number is not None:
            own = self.user_vectors(q, served, [customer_number]).get(customer_number)
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

    @staticmethod
    def user_vectors(q: VectorQueries, served: Served, customers: Sequence[int]) -> dict[int, Any]:
        """The stored embeddings of ``customers`` who have one, read once per loaded model (one
        query for those not read yet; ``q`` reads ``served``'s tables)."""
        missing = sorted({c for c in customers if c not in served.users})
        if missing:
            found = q.user_vectors(missing)
            if len(served.users) > VECTOR_CACHE:
                served.users.clear()
            for c in missing:
                served.users[c] = found.get(c)
        return {c: served.users[c] for c in customers if served.users.get(c) is not None}

    @staticmethod
    def item_vectors(q: VectorQueries, served: Served, wanted: Sequence[str]) -> dict[str, Any]:
        """The loaded embeddings of ``wanted`` products, read once per loaded model."""
        missing = [c for c in wanted if c not in served.vectors]
        if missing:
            found = q.item_vectors(missing)
            if len(served.vectors) > VECTOR_CACHE:
                served.vectors.clear()
            for code in missing:
                served.vectors[code] = found.get(code)
        return {c: served.vectors[c] for c in wanted if served.vectors.get(c) is not None}

    # -- items ---------------------------------------------------------------------------------
    def similar_to_item(self, q: VectorQueries, item_id: str, rules: Rules = Rules()) -> Recommendation:
        shop = self.shop(q)
        model = self.model_of(self.choose(q, shop, None)[0])  # the serving model, of this same snapshot
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
    def choose(self, q: VectorQueries, shop: _Shop, unit: int | str | None) -> tuple[Served, Variant | None]:
        """The model a shopper (customer number, else session id; None: nobody in particular) is
        served, and their variant of the running experiment; ``q`` now reads that model's tables."""
        variant = None
        served = self._serving(shop, q)
        if shop.experiment is not None and unit is not None:
            variant = shop.experiment.assign(unit)
            if not variant.popularity:
                served = shop.served[variant.target]
        q.use(served.tables)
        return served, variant

    def serving(self, q: VectorQueries) -> Served:
        """The serving model; ``q`` now reads its tables."""
        served = self._serving(self.shop(q), q)
        q.use(served.tables)
        return served

    def model(self, q: VectorQueries) -> Model:
        """The serving model's towers (``q`` reads its tables): a user tower and item vectors of
        different versions are never paired, whatever training has published since."""
        return self.model_of(self.serving(q))

    def _serving(self, shop: _Shop, q: VectorQueries) -> Served:
        served = shop.serving
        if served is None:
            raise NotPublished(f"nothing is loaded in the vector database {q.db.url}",
                               hint="run `recpipe vectors load`")
        return served

    def model_of(self, served: Served) -> Model:
        if served.model is not None:
            return served.model
        published = self.published.version()
        if published != served.version:
            raise NotPublished(f"the vector database holds the embeddings of model {served.version} but no copy of "
                               f"that model (loaded by an older recpipe); the artifacts hold model {published}",
                               hint="run `recpipe vectors load` to serve the published model")
        return self.published.get()

    def shop(self, q: VectorQueries) -> _Shop:
        """The catalog, popularity, serving model and running experiment, checked every
        ``check_every`` s (two small reads)."""
        now = time.monotonic()
        if now - self._shop.checked < self.check_every:
            return self._shop
        with self._lock:
            if now - self._shop.checked >= self.check_every:
                self._shop = self._refresh(q, self._shop)
                self._shop.checked = now
        return self._shop

    def _refresh(self, q: VectorQueries, old: _Shop) -> _Shop:
        loaded_at, version = q.loaded()
        experiment = q.experiment()
        wanted = ([version] if version else []) + (experiment.versions() if experiment else [])
        if loaded_at == old.loaded_at and old.checked and experiment == old.experiment and set(wanted) <= set(old.served):
            return old
        same = loaded_at == old.loaded_at and bool(old.checked)
        popular, lines = (old.popular, old.lines) if same else (q.popularity(), q.product_lines())
        kept = old.served if same else {}  # a load or a promotion reads every model again
        served = {v: kept.get(v) or self._read(q, v) for v in dict.fromkeys(wanted)}
        return _Shop(loaded_at, popular, {r[0]: r[1] for r in popular}, lines=lines, version=version,
                     served=served, experiment=experiment)

    @staticmethod
    def _read(q: VectorQueries, version: str) -> Served:
        tables, files = q.model_files(version)
        model = Model.from_files(version, files.get, f"the vector database {q.db.url}") if files else None
        return Served(version, tables, model)

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
