"""Tables and indexes of the vector database, defined once.

``item_emb``/``user_emb`` keep the seed's columns (``id``, ``embedding vector(32)``);
``item_emb`` adds what filters need. Each loaded model has its own copy of both and of
``recpipe_model`` (its serving files), named by ``recpipe.contracts.models``; the seed's names
are views of the serving model's. ``recpipe_vectors`` records what serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recpipe.contracts.artifacts import EMBEDDING_DIM

ITEMS = "item_emb"
USERS = "user_emb"
META = "recpipe_vectors"
MODEL = "recpipe_model"  # the serving files of the model whose embeddings are loaded
CATALOG = "catalog"  # every product of the source, with or without an embedding
CUSTOMERS = "customers"  # every customer of the source: who the page and the API can look up
PURCHASES = "purchases"  # who bought what (orders ⋈ orderdetails), for "already bought"
RECENT = "recent_activity"  # the session store: what each customer and session did lately (not part of a load)
# pgvector's default m; ef_construction 128 instead of 64: at 1M items the build takes 1.8×
# as long and recall@10 at ef_search 40 goes from 0.94 to 0.996 (bench/vectors.py).
HNSW = {"m": 16, "ef_construction": 128}


def create_items(name: str = ITEMS) -> str:
    return (f"CREATE TABLE {name} (id varchar PRIMARY KEY, embedding vector({EMBEDDING_DIM}) NOT NULL, "
            "product_line varchar, quantity_in_stock integer)")


def create_users(name: str = USERS) -> str:
    return f"CREATE TABLE {name} (id integer PRIMARY KEY, embedding vector({EMBEDDING_DIM}) NOT NULL)"


def create_catalog(name: str = CATALOG) -> str:
    return (f"CREATE TABLE {name} (id varchar PRIMARY KEY, product_line varchar, quantity_in_stock integer, "
            "name varchar, scale varchar, vendor varchar, msrp double precision)")


def create_customers(name: str = CUSTOMERS) -> str:
    return (f"CREATE TABLE {name} (id integer PRIMARY KEY, name varchar, city varchar, country varchar, "
            "credit_limit double precision)")


def create_purchases(name: str = PURCHASES) -> str:
    return (f"CREATE TABLE {name} (customer_number integer, product_code varchar, rating integer, "
            "PRIMARY KEY (customer_number, product_code))")


def create_model(name: str = MODEL) -> str:
    return f"CREATE TABLE {name} (file varchar PRIMARY KEY, data bytea NOT NULL)"


def hnsw_index(table: str, index: str) -> str:
    params = ", ".join(f"{k} = {v}" for k, v in HNSW.items())
    return f"CREATE INDEX {index} ON {table} USING hnsw (embedding vector_cosine_ops) WITH ({params})"


def line_index(table: str, index: str) -> str:
    return f"CREATE INDEX {index} ON {table} (product_line)"


# The session store, written by the streaming transformation as events are delivered and read by
# every serving path. ``owner`` is a customer number or a session id (``owner_kind`` says which);
# ``at`` orders a session's products (the event's time, the history's order within an event);
# ``recorded_at`` (when the store learned it) decides expiry, so replayed old events are recent.
CREATE_RECENT = (f"CREATE TABLE IF NOT EXISTS {RECENT} (owner_kind varchar(8) NOT NULL, owner text NOT NULL, "
                 "product_code varchar NOT NULL, kind varchar(8) NOT NULL, at timestamptz NOT NULL, "
                 "recorded_at timestamptz NOT NULL DEFAULT now(), customer_number integer, "
                 "PRIMARY KEY (owner_kind, owner, product_code))")
# No secondary index: a read takes one owner's rows by the primary key's prefix (at most a few
# dozen) and sorts them; an index on ``at`` or ``recorded_at`` doubled the cost of each write
# (bench/stream.py), and the expiry that would use one runs once every few minutes.

CREATE_META = (f"CREATE TABLE IF NOT EXISTS {META} (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
               "model_version text, artifacts text, items integer, users integer, catalog integer, loaded_at timestamptz)")

# the indexes each table has: by these names for the shop's tables (and in sql/embeddings.sql's
# seed layout); a model's own tables name theirs ``<table>_hnsw`` and ``<table>_line``
INDEXES = {ITEMS: {"hnsw": "item_emb_embedding_hnsw", "line": "item_emb_product_line"},
           USERS: {"hnsw": "user_emb_embedding_hnsw"}, CATALOG: {"line": "catalog_product_line"}, PURCHASES: {},
           CUSTOMERS: {}, MODEL: {}}


@dataclass(frozen=True)
class Scored:
    """One result of a similarity query: a product code (or customer number) and its cosine."""

    id: str | int
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score}
