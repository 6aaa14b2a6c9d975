"""Loading a standard classicmodels MySQL dump (the sample file, or ``mysqldump`` output).

Into MySQL/MariaDB the dump's own statements run as they are. Into SQLite or PostgreSQL the
tables are created from recpipe's schema (the same tables and columns, checked against the
dump) and every row-carrying statement is translated from MySQL's dialect by sqlglot.
Session settings, ``LOCK TABLES`` and ``CREATE DATABASE``/``USE`` are not replayed: the
dump lands in the database the source URL names, in one atomic build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts.source import TABLE_ORDER, table
from recpipe.errors import InputError
from recpipe.progress import SILENT, Progress

REQUIRED = ("customers", "products", "orders", "orderdetails")
TARGET_DIALECT = {"sqlite": "sqlite", "postgresql": "postgres"}


@dataclass
class Statement:
    kind: str  # "create", "insert", "other"
    table: str | None
    text: str  # as written in the dump (MySQL)
    tree: exp.Expr


@dataclass
class Dump:
    path: Path
    statements: list[Statement]
    columns: dict[str, list[str]] = field(default_factory=dict)  # CREATE TABLE columns

    @property
    def tables(self) -> list[str]:
        return list(self.columns)


def read_dump(path: Path) -> Dump:
    """Parse and check a dump before anything is written."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read dump {path}: {exc.strerror}", hint="check the path") from exc
    try:
        sql = raw.decode("utf-8")
    except UnicodeDecodeError:
        sql = raw.decode("latin-1")  # the classic sample declares latin1 tables
    statements, columns = [], {}
    for text in _statement_texts(sql):
        try:
            trees = [t for t in sqlglot.parse(text, read="mysql")
                     if t is not None and not isinstance(t, exp.Semicolon)]
        except ParseError as exc:
            first = exc.errors[0] if exc.errors else {}
            raise InputError(f"{path} is not valid MySQL SQL near {text[:60]!r}: "
                             f"{first.get('description', exc)}",
                             hint="pass a MySQL dump such as mysqlsampledatabase.sql or mysqldump output"
                             ) from exc
        if not trees:
            continue  # only comments, such as MySQL's /*!40101 … */ hints
        kind, name = _classify(trees[0])
        if kind == "create" and name:
            columns[name] = [c.name for c in trees[0].this.expressions if isinstance(c, exp.ColumnDef)]
        statements.append(Statement(kind, name, text, trees[0]))
    dump = Dump(path, statements, columns)
    missing = [t for t in REQUIRED if t not in columns]
    if missing:
        found = ", ".join(columns) or "no tables"
        raise InputError(f"{path} is not a classicmodels dump: it creates {found}; "
                         f"missing {', '.join(missing)}",
                         hint="pass the classicmodels sample (mysqlsampledatabase.sql) or a mysqldump of it")
    for name, cols in columns.items():
        if name in TABLE_ORDER and cols != [c.name for c in table(name).columns]:
            raise InputError(f"table {name!r} in {path} has columns {cols}, classicmodels has "
                             f"{[c.name for c in table(name).columns]}",
                             hint="the dump is of a different schema; fix or regenerate it")
    return dump


def load_dump(db: SourceDatabase, dump: Dump, *, replace: bool = False,
              progress: Progress = SILENT) -> dict[str, int]:
    """Write the dump's tables and rows into ``db`` atomically; return row counts."""
    native = db.dialect == "mysql"
    target = TARGET_DIALECT.get(db.dialect, db.dialect)
    created = dump.tables
    known = [t for t in TABLE_ORDER if t in created]
    with db.build(replace=replace, fresh=True, tables=created) as loader:
        if not native:
            loader.create_tables(known, indexes=False)
        for st in dump.statements:
            if st.kind == "create":
                if native:
                    loader.execute(st.text, creates=st.table)
                elif st.table not in known:
                    loader.execute(_create_sql(st.tree, target), creates=st.table)
            elif st.kind == "insert":
                loader.execute(st.text if native else st.tree.sql(dialect=target))
                progress.advance(st.table or "?", len(st.tree.expression.expressions)
                                 if isinstance(st.tree.expression, exp.Values) else 0)
            elif st.kind == "other" and native:
                loader.execute(st.text)
        if not native:
            loader.create_indexes(known)
        counts = {name: loader.query(f"SELECT COUNT(*) FROM {_quote(name, db.dialect)}")[0][0]
                  for name in created}
    return counts


def _classify(tree: exp.Expr) -> tuple[str, str | None]:
    if isinstance(tree, exp.Create):
        kind = (tree.args.get("kind") or "").upper()
        if kind == "TABLE" and isinstance(tree.this, exp.Schema):
            return "create", tree.this.this.name
        return "skip", None  # CREATE DATABASE / SCHEMA
    if isinstance(tree, exp.Insert):
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        return "insert", target.name
    if isinstance(tree, exp.Use | exp.Set | exp.Drop | exp.Command | exp.Comment):
        return "skip", None  # USE, SET, DROP IF EXISTS (build() handles it), LOCK/UNLOCK TABLES
    return "other", None


def _create_sql(tree: exp.Expr, dialect: str) -> str:
    """CREATE TABLE for a table recpipe does not know; inline KEY/INDEX clauses are dropped."""
    tree = tree.copy()
    for node in list(tree.this.expressions):
        if isinstance(node, exp.IndexColumnConstraint):
            node.pop()
    tree.set("properties", None)
    return tree.sql(dialect=dialect)


def _statement_texts(sql: str) -> list[str]:
    """The original text of each statement, split at the semicolons the tokenizer finds."""
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise("mysql").tokenize(sql)
    except sqlglot.errors.TokenError as exc:
        raise InputError(f"cannot read the SQL: {exc}", hint="pass a MySQL dump") from exc
    texts, start = [], 0
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            texts.append(sql[start:tok.start].strip())
            start = tok.end + 1
    texts.append(sql[start:].strip())
    return [t for t in texts if t]


def _quote(name: str, dialect: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'
