"""sql/embeddings.sql (for RDS) and the loader never drift: the same tables, columns, types,
dimensions and indexes, compared in a real PostgreSQL's catalog."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg
import pytest

from recpipe.adapters import open_artifacts, open_vectors
from recpipe.contracts.models import ModelTables, slug
from recpipe.vectors.pipeline import run as load_vectors
from tests.support.vectors import write_artifacts

pytestmark = pytest.mark.integration
SQL = Path(__file__).resolve().parents[2] / "sql" / "embeddings.sql"


def _catalog(conninfo: str, items: str = "item_emb", users: str = "user_emb") -> dict[str, object]:
    """The columns and index definitions of the two tables, named as the seed names them (the
    loader's are a model version's tables, ``contracts.models``), index names left out."""
    names = {items: "item_emb", users: "user_emb"}
    with psycopg.connect(conninfo) as c:
        columns = c.execute(
            "SELECT table_name, column_name, format_type(a.atttypid, a.atttypmod), is_nullable "
            "FROM information_schema.columns ic JOIN pg_attribute a ON a.attrelid = ic.table_name::regclass "
            "AND a.attname = ic.column_name WHERE table_schema = 'public' AND table_name IN (%s, %s) "
            "ORDER BY table_name, ordinal_position", (items, users)).fetchall()
        indexes = c.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                            "AND tablename IN (%s, %s)", (items, users)).fetchall()
    return {"columns": sorted((names[t], *rest) for t, *rest in columns),
            "indexes": sorted(d.replace(f" {i} ON", " ON").replace(f"public.{t} ", f"public.{names[t]} ")
                              for t, i, d in indexes)}


def _database(pg_server: object) -> str:
    name = f"s_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name};")  # type: ignore[attr-defined]
    return pg_server.get_uri(name)  # type: ignore[attr-defined]


def test_embeddings_sql_creates_what_the_loader_creates(pg_server: object, tmp_path: Path) -> None:
    text = SQL.read_text()
    ddl = [s.strip() for s in re.findall(r"^(CREATE (?:EXTENSION IF NOT EXISTS vector|TABLE (?:item|user)_emb|INDEX)[^;]*;)",
                                          text, flags=re.MULTILINE)]
    assert len(ddl) == 6, ddl  # extension, 2 tables, 3 indexes
    from_sql = _database(pg_server)
    with psycopg.connect(from_sql, autocommit=True) as c:
        for statement in ddl:
            c.execute(statement)
    from_loader = _database(pg_server)
    write_artifacts(tmp_path / "art")
    store, name = open_artifacts(str(tmp_path / "art"))
    load_vectors(open_vectors(from_loader), store, name)
    served = ModelTables.of("v1", slug("v1"))
    expected = _catalog(from_loader, served.items, served.users)
    assert _catalog(from_sql) == expected
    assert ("item_emb", "embedding", "vector(32)", "NO") in expected["columns"]  # type: ignore[operator]
    # every CSV the loader reads is imported by the script too
    for csv in ("item_embeddings.csv", "user_embeddings.csv", "item_attributes.csv"):
        assert f"embeddings/{csv}" in text
    assert text.count("aws_s3.table_import_from_s3(") == 3


def test_the_script_runs_on_a_database_the_loader_manages(pg_server: object, tmp_path: Path) -> None:
    """There item_emb and user_emb are views of the serving model's tables: the script's DO
    block drops them before its DROP TABLE / CREATE TABLE, and the models' own tables stay."""
    text = SQL.read_text()
    steps = re.findall(r"^(DO \$\$.*?END \$\$;|DROP TABLE IF EXISTS (?:item|user)_emb;|CREATE TABLE (?:item|user)_emb[^;]*;)",
                       text, flags=re.MULTILINE | re.DOTALL)
    assert len(steps) == 5, steps
    managed = _database(pg_server)
    write_artifacts(tmp_path / "art")
    store, name = open_artifacts(str(tmp_path / "art"))
    load_vectors(open_vectors(managed), store, name)
    with psycopg.connect(managed, autocommit=True) as c:
        for statement in steps:
            c.execute(statement)
        kinds = dict(c.execute("SELECT relname, relkind FROM pg_class WHERE relname IN ('item_emb', 'user_emb', %s)",
                               (ModelTables.of("v1", slug("v1")).items,)).fetchall())
    assert kinds == {"item_emb": "r", "user_emb": "r", ModelTables.of("v1", slug("v1")).items: "r"}
