"""Similarity queries on the vector database, shared by the inference service and the
streaming handler (tables: ``recpipe.contracts.vectors``).

Scores are cosine similarities (1 − pgvector's cosine distance), best first; equal scores
are ordered by id. Every query takes ``k``, an ``exclude`` list and :class:`Filters`; the
``*_many`` forms answer a batch in one round trip. HNSW returns at most ``hnsw.ef_search``
candidates before filters apply, so when a filtered query comes back short it is retried
with a wider search, then exactly (no index): a filter never silently loses results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from recpipe.adapters.base import VectorDatabase
from recpipe.contracts import vectors as schema
from recpipe.contracts.artifacts import EMBEDDING_DIM
from recpipe.contracts.limits import DEFAULT_EF_SEARCH, MAX_EF_SEARCH, MAX_K
from recpipe.contracts.models import ModelTables
from recpipe.contracts.vectors import Scored
from recpipe.errors import InputError, NotFound, NotPublished
from recpipe.vectors import sessions
from recpipe.vectors.connect import connect, has_table

T = TypeVar("T")


@dataclass(frozen=True)
class Filters:
    in_stock: bool = False  # quantity_in_stock > 0
    product_line: str | None = None
    not_bought_by: int | None = None  # leave out what this customer bought (the purchases table)

    def sql(self, alias: str, *, exclude: bool = False) -> tuple[str, dict[str, Any]]:
        """The WHERE conditions (each " AND …") and their parameters; ``exclude`` adds the
        exclusion list (left out when empty: one condition less per candidate)."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if exclude:
            parts.append(f"{alias}.id <> ALL(%(exclude)s::varchar[])")
        if self.in_stock:
            parts.append(f"{alias}.quantity_in_stock > 0")
        if self.product_line is not None:
            parts.append(f"{alias}.product_line = %(line)s")
            params["line"] = self.product_line
        if self.not_bought_by is not None:
            parts.append(f"NOT EXISTS (SELECT 1 FROM {schema.PURCHASES} p WHERE p.customer_number = %(buyer)s "
                         f"AND p.product_code = {alias}.id)")
            params["buyer"] = self.not_bought_by
        return "".join(f" AND {p}" for p in parts), params

    @property
    def any(self) -> bool:
        return self.in_stock or self.product_line is not None or self.not_bought_by is not None


class VectorQueries:
    """One connection's worth of queries (not shared between threads)."""

    def __init__(self, db: VectorDatabase, *, ef_search: int | None = None) -> None:
        self.db = db
        self._conn = connect(db)
        self._ef: int | None = None
        self.ef_search = _check_ef(ef_search or DEFAULT_EF_SEARCH)
        self.items, self.users = schema.ITEMS, schema.USERS  # the serving model's (views), until ``use``

    def use(self, tables: ModelTables | None) -> VectorQueries:
        """Query one loaded model's tables from now on (None: the serving model's views)."""
        self.items, self.users = (schema.ITEMS, schema.USERS) if tables is None else (tables.items, tables.users)
        return self

    def close(self) -> None:
        self._conn.close()

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        """One of this package's reads (``recpipe.vectors.shop``, ``pipeline.status``) on this
        connection: the connection itself stays in ``recpipe.vectors``."""
        return fn(self._conn, *args)

    def check_loaded(self) -> None:
        """Raise (UndefinedTable, OperationalError) unless the item embeddings can be read."""
        self._conn.execute(f"SELECT 1 FROM {self.items} LIMIT 1").fetchall()

    def first_stored_customer(self) -> int | None:
        """The lowest customer number with a stored embedding (None: none loaded)."""
        return self._shop_rows(f"SELECT min(id) FROM {self.users}", ())[0][0] if has_table(
            self._conn, self.users) else None

    def __enter__(self) -> VectorQueries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- single queries ---------------------------------------------------------------
    def similar_items(self, item_id: str, k: int = 10, *, exclude: Sequence[str] = (),
                      filters: Filters = Filters()) -> list[Scored] | None:
        """Items most like ``item_id``, never itself; None if ``item_id`` has no embedding."""
        return self.similar_items_many([item_id], k, exclude=exclude, filters=filters)[0]

    def items_for_user(self, customer_number: int, k: int = 10, *, exclude: Sequence[str] = (),
                       filters: Filters = Filters()) -> list[Scored] | None:
        """Items for a stored user; None if the customer has no embedding."""
        return self.items_for_users([customer_number], k, exclude=exclude, filters=filters)[0]

    def items_for_embedding(self, embedding: Sequence[float] | np.ndarray, k: int = 10, *,
                            exclude: Sequence[str] = (), filters: Filters = Filters()) -> list[Scored]:
        """Items for an embedding (e.g. from the user tower). A plain statement with the vector
        as a binary parameter: the fastest form for one query."""
        vector = _vectors([embedding])[0]
        where, params = filters.sql("e", exclude=bool(exclude))
        sql = (f"SELECT 1, e.id, 1 - (e.embedding <=> %(vec)s) FROM {self.items} e "
               f"WHERE true{where} ORDER BY e.embedding <=> %(vec)s LIMIT %(k)s")
        return self._run(sql, params | {"vec": vector}, [vector], k, exclude, filters, binary=True)[0] or []

    # -- batched: one round trip each ---------------------------------------------------
    # ``skip_each``: per key, more product codes to leave out (e.g. each shopper's cart)
    def similar_items_many(self, item_ids: Sequence[str], k: int = 10, *, exclude: Sequence[str] = (),
                           filters: Filters = Filters(), skip_each: Sequence[Sequence[str]] | None = None
                           ) -> list[list[Scored] | None]:
        source = f"{_keyed('%(keys)s::varchar[]', 'key')} JOIN {self.items} q ON q.id = u.key"
        sql, params = _lateral(source, self.items, filters, exclude, "AND e.id <> q.id", skip=skip_each is not None)
        return self._run(sql, params, [str(i) for i in item_ids], k, exclude, filters, skip_each)

    def items_for_users(self, customer_numbers: Sequence[int], k: int = 10, *, exclude: Sequence[str] = (),
                        filters: Filters = Filters(), skip_each: Sequence[Sequence[str]] | None = None,
                        not_bought: bool = False) -> list[list[Scored] | None]:
        """``not_bought``: leave out what each customer bought (the purchases table)."""
        source = f"{_keyed('%(keys)s::int[]', 'key')} JOIN {self.users} q ON q.id = u.key"
        sql, params = _lateral(source, self.items, filters, exclude, skip=skip_each is not None,
                               buyer="u.key" if not_bought else None)
        return self._run(sql, params, [int(c) for c in customer_numbers], k, exclude, filters, skip_each)

    def items_for_embeddings(self, embeddings: Sequence[Sequence[float]] | np.ndarray, k: int = 10, *,
                             exclude: Sequence[str] = (), filters: Filters = Filters(),
                             skip_each: Sequence[Sequence[str]] | None = None,
                             buyers: Sequence[int | None] | None = None) -> list[list[Scored]]:
        """``buyers``: per embedding, a customer whose purchases to leave out (None: nobody's)."""
        texts = ["[" + ",".join(map(repr, v.tolist())) + "]" for v in _vectors(embeddings)]
        # cast the array once: a per-row ``u.key::vector`` is inlined into the inner scan and
        # parsed again for every candidate (20x slower at 190 items, EXPLAIN ANALYZE)
        source = (f"{_keyed('%(keys)s::vector[]', 'embedding', '%(buyers)s::int[]', 'q')} "
                  "CROSS JOIN LATERAL (SELECT q.ord, q.skip, q.buyer) u")
        sql, params = _lateral(source, self.items, filters, exclude, skip=skip_each is not None,
                               buyer="u.buyer" if buyers is not None else None)
        got = self._run(sql, params, texts, k, exclude, filters, skip_each,
                        buyers=list(buyers) if buyers is not None else [None] * len(texts))
        return [r or [] for r in got]

    def item_vectors(self, codes: Sequence[str]) -> dict[str, np.ndarray]:
        """The loaded embeddings of ``codes`` (codes without one are left out)."""
        if not codes:
            return {}
        rows = self._fetch_rows(f"SELECT id, embedding FROM {self.items} WHERE id = ANY(%s::varchar[])",
                                (list(codes),))
        return {r[0]: np.asarray(r[1], np.float32) for r in rows}

    def user_vectors(self, customer_numbers: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored embeddings of those customers who have one."""
        if not customer_numbers:
            return {}
        rows = self._fetch_rows(f"SELECT id, embedding FROM {self.users} WHERE id = ANY(%s::int[])",
                                ([int(c) for c in customer_numbers],))
        return {int(r[0]): np.asarray(r[1], np.float32) for r in rows}

    def recent(self, owner_kind: str, owner: str | int) -> tuple[list[Any], int | None]:
        """``sessions.recent`` on this connection: an owner's recent products, oldest first."""
        return sessions.recent(self._conn, owner_kind, owner)

    def record_activity(self, rows: Sequence[Any], *, prune: Any = None) -> int:
        """``sessions.record`` on this connection."""
        return sessions.record(self._conn, rows, prune=prune)

    # -- the shop around the vectors (loaded from the source by `vectors load`) -------------
    # Without a catalog (loaded with --no-catalog) these answer as for an empty shop.
    def catalog_item(self, item_id: str) -> tuple[str | None, int | None] | None:
        """(product line, stock) of a catalog product, or None if it is not in the catalog."""
        rows = self._shop_rows(f"SELECT product_line, quantity_in_stock FROM {schema.CATALOG} WHERE id = %s",
                               (item_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def customer_features(self, customer_number: int) -> dict[str, Any] | None:
        """What the user tower reads of a loaded customer (None if the shop does not know them)."""
        rows = self._shop_rows(f"SELECT city, country, credit_limit FROM {schema.CUSTOMERS} WHERE id = %s",
                               (customer_number,))
        return dict(zip(("city", "country", "creditLimit"), rows[0], strict=True)) if rows else None

    def bought(self, customer_number: int) -> list[str]:
        return self.bought_many([customer_number]).get(int(customer_number), [])

    def bought_many(self, customer_numbers: Sequence[int]) -> dict[int, list[str]]:
        """What each of these customers bought (those who bought nothing are left out)."""
        rows = self._shop_rows(f"SELECT customer_number, array_agg(product_code) FROM {schema.PURCHASES} "
                               "WHERE customer_number = ANY(%s::int[]) GROUP BY customer_number",
                               ([int(c) for c in customer_numbers],)) if customer_numbers else []
        return {int(c): list(codes) for c, codes in rows}

    def popularity(self) -> list[tuple[str, str | None, int | None, int]]:
        """Every catalog product with its number of buyers, most bought first, ties by id."""
        return [tuple(r) for r in self._shop_rows(
            f"SELECT c.id, c.product_line, c.quantity_in_stock, count(p.customer_number) AS buyers "
            f"FROM {schema.CATALOG} c LEFT JOIN {schema.PURCHASES} p ON p.product_code = c.id "
            f"GROUP BY c.id ORDER BY buyers DESC, c.id", ())]

    def product_lines(self) -> list[str]:
        """Every product line the loaded items or the catalog have."""
        lines = {r[0] for table in (schema.ITEMS, schema.CATALOG) for r in self._shop_rows(
            f"SELECT DISTINCT product_line FROM {table} WHERE product_line IS NOT NULL", ())}
        return sorted(lines)

    def _fetch_rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Rows of a read that needs the loaded embeddings (NotPublished without them)."""
        from psycopg import errors

        try:
            return self._conn.execute(sql, params, prepare=True).fetchall()
        except errors.UndefinedTable:
            raise NotPublished(f"no embeddings are loaded in {self.db.url}",
                               hint="run `recpipe vectors load` first (after `recpipe train`)") from None

    def _shop_rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        from psycopg import errors

        try:
            return self._conn.execute(sql, params, prepare=bool(params)).fetchall()
        except errors.UndefinedTable:
            return []

    def loaded(self) -> tuple[Any, str | None]:
        """When the current data was switched in (changes with every `vectors load`) and the
        version of the model whose embeddings they are; (None, None) before any load."""
        row = self._shop_rows(f"SELECT loaded_at, model_version FROM {schema.META}", ())
        return (row[0][0], row[0][1]) if row else (None, None)

    def model_files(self, version: str) -> tuple[ModelTables | None, dict[str, bytes]]:
        """The tables and serving files of a loaded version; (None, files of the plain
        ``recpipe_model`` table) for a database loaded before models were versioned."""
        from recpipe.vectors import registry

        tables = registry.tables(self._conn, version)
        source = tables.files if tables is not None else schema.MODEL
        rows = self._shop_rows(f"SELECT file, data FROM {source}", ())
        return tables, {file: bytes(data) for file, data in rows}

    def experiment(self) -> Any:
        """The running experiment (``contracts.models.Experiment``), or None."""
        from recpipe.vectors import experiments

        return experiments.running(self._conn)

    # -- the one query -------------------------------------------------------------------
    def _run(self, sql: str, params: dict[str, Any], keys: list[Any], k: int, exclude: Sequence[str],
             filters: Filters, skip_each: Sequence[Sequence[str]] | None = None, *, binary: bool = False,
             buyers: list[int | None] | None = None) -> list[list[Scored] | None]:
        """Run ``sql`` (rows of ordinal, id, score; ``params`` are its filters') for ``keys``;
        refill short filtered results."""
        k = _check_k(k)
        if not keys:
            return []
        params = {**params, "keys": keys, "k": k}
        if "%(each)s" in sql:
            each = list(skip_each) if skip_each is not None else [()] * len(keys)
            if len(each) != len(keys):
                raise InputError(f"skip_each has {len(each)} lists for {len(keys)} keys")
            params["each"] = [_SEP.join(map(str, codes)) for codes in each]
        if buyers is not None:
            params["buyers"] = buyers
        if exclude:
            params["exclude"] = [str(x) for x in exclude]
        found = self._fetch(sql, params, self.ef_search, binary)
        short = [i for i, r in enumerate(found) if r is not None and len(r) < k]
        if short and (filters.any or exclude or skip_each or "NOT EXISTS" in sql):
            # too few after filtering: widen the search, then go exact, for those keys only
            retry = {**params, "keys": [keys[i] for i in short]}
            for per_key in ("each", "buyers"):
                if per_key in params:
                    retry[per_key] = [params[per_key][i] for i in short]
            ef = self.ef_search
            while ef < MAX_EF_SEARCH:
                ef = min(MAX_EF_SEARCH, ef * 4)
                again = self._fetch(sql, retry, ef, binary)
                if all(r is not None and len(r) >= k for r in again):
                    break
            else:
                again = self._fetch(sql, retry, None, binary)
            for i, r in zip(short, again, strict=True):
                found[i] = r
        return found

    def _fetch(self, sql: str, params: dict[str, Any], ef: int | None, binary: bool = False
               ) -> list[list[Scored] | None]:
        """``ef=None``: exact search (the index is not used) for this query only."""
        from psycopg import errors

        try:
            return self._fetch_loaded(sql, params, ef, binary)
        except errors.UndefinedTable:
            raise NotPublished(f"no embeddings are loaded in {self.db.url}",
                               hint="run `recpipe vectors load` first (after `recpipe train`)") from None

    def _fetch_loaded(self, sql: str, params: dict[str, Any], ef: int | None, binary: bool
                      ) -> list[list[Scored] | None]:
        out: list[list[Scored] | None] = [None] * len(params["keys"])
        if ef is None:
            self._conn.execute("SET enable_indexscan = off")
            try:
                rows = self._conn.execute(sql, params, binary=binary).fetchall()
            finally:
                self._conn.execute("SET enable_indexscan = on")
        else:
            self._set_ef(max(ef, params["k"] + 1))  # + 1: "never itself" may drop one candidate
            rows = self._conn.execute(sql, params, prepare=True, binary=binary).fetchall()
        for ord_, key, score in rows:
            bucket = out[ord_ - 1]
            if bucket is None:
                bucket = out[ord_ - 1] = []
            if key is not None:
                bucket.append(Scored(key, float(score)))
        for bucket in out:
            if bucket:
                bucket.sort(key=lambda s: (-s.score, str(s.id)))
        return out

    def _set_ef(self, ef: int) -> None:
        """Session-level, sent only when it changes (one round trip saved per query)."""
        ef = min(ef, MAX_EF_SEARCH)
        if ef != self._ef:
            self._conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            self._ef = ef


def _lateral(source: str, items: str, filters: Filters, exclude: Sequence[str], not_self: str = "", *,
             skip: bool = False, buyer: str | None = None) -> tuple[str, dict[str, Any]]:
    """One statement for a batch: per row of ``source`` (ordinal ``u.ord``, embedding
    ``q.embedding``, codes to skip ``u.skip``), its top k by an index scan; rows of unknown keys do not appear. With
    the filters' parameters. ``buyer``: the expression of the row's customer whose purchases to leave out."""
    where, params = filters.sql("e", exclude=bool(exclude))
    # the key's own codes to skip, only when asked: the service's queries stay as they were
    each = " AND e.id <> ALL(u.skip)" if skip else ""
    if buyer is not None:
        each += (f" AND NOT EXISTS (SELECT 1 FROM {schema.PURCHASES} p WHERE p.customer_number = {buyer} "
                 "AND p.product_code = e.id)")
    return (f"SELECT u.ord, r.id, r.score FROM {source} "
            f"LEFT JOIN LATERAL (SELECT e.id, 1 - (e.embedding <=> q.embedding) AS score "
            f"FROM {items} e WHERE true {not_self}{where}{each} "
            f"ORDER BY e.embedding <=> q.embedding LIMIT %(k)s) r ON true"), params


_SEP = "\x1f"  # joins a key's codes to skip into one text (the unit separator: not in product codes)


def _keyed(keys: str, name: str, buyers: str | None = None, alias: str = "u") -> str:
    """The batch's keys as rows (``ord``, the key as ``name``, ``skip`` as a varchar[], and the
    ``buyer``), the skip text split once per key: ``OFFSET 0`` keeps the planner from inlining
    the split into the candidate scan, where it ran again for every candidate (2x the query)."""
    extra, columns = (f", {buyers}", ", buyer") if buyers else ("", "")
    return (f"(SELECT x.{name}, string_to_array(x.skip, E'\\x1f')::varchar[] AS skip{columns}, x.ord "
            f"FROM unnest({keys}, %(each)s::text[]{extra}) WITH ORDINALITY AS x({name}, skip{columns}, ord) "
            f"OFFSET 0) {alias}")


def _vectors(embeddings: Any) -> np.ndarray:
    """Query vectors as float32. A vector whose magnitude float4 arithmetic cannot square (or
    that would underflow) is scaled by its largest value: the cosine is the same. Others are
    sent as they are, so a stored vector and the same vector sent by value score alike."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] != EMBEDDING_DIM or not np.isfinite(vectors).all():
        raise InputError(f"an embedding must be {EMBEDDING_DIM} finite numbers (got shape {vectors.shape[1:]})")
    scale = np.abs(vectors).max(axis=1, keepdims=True)
    if not scale.all():
        raise InputError("an all-zero embedding has no direction: cosine similarity is undefined")
    extreme = (scale > 1e15) | (scale < 1e-15)
    return np.where(extreme, vectors / scale, vectors).astype(np.float32)


def check_product_line(line: str | None, known: Sequence[str]) -> None:
    """A product line nobody has is an error naming the known ones, not an empty answer."""
    if line is None or not known or line in known:
        return
    import difflib

    close = [k for k in known if k.casefold() == line.casefold()] or difflib.get_close_matches(line, known, 1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise NotFound(f"product line {line!r} is not in the catalog",
                     hint=f"{guess}known product lines: {', '.join(known)}")


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be an integer from 1 to {MAX_K} (got {k!r})")
    return k


def _check_ef(ef: int) -> int:
    if not isinstance(ef, int) or not 1 <= ef <= MAX_EF_SEARCH:
        raise InputError(f"ef_search must be an integer from 1 to {MAX_EF_SEARCH} (got {ef!r})")
    return ef
