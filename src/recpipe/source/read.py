"""Reading the source with the dataset contract: the tables the training set and serving need,
checked first (every table and column there with a usable type), and streamed in Arrow. Orders
and their lines are optional: without them the training set has no time order.
The ETL and `vectors load` (the catalog, customers and purchases) both read through it."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from sqlalchemy import inspect
from sqlalchemy import types as sqltypes

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts.dataset import OPTIONAL_SOURCE, SOURCE_COLUMNS
from recpipe.errors import InputError, ServiceError
from recpipe.progress import SILENT, Progress

# SQLite types are suggestions: a value of another storage class is kept apart (as text in
# ``<column>__raw``, NULL in the column) instead of being coerced ('4 stars' would become 4).
_SQLITE_VALUES = {"integer": ("CASE WHEN typeof({c}) = 'integer' THEN {c} END", ("integer", "null")),
                  "number": ("CASE WHEN typeof({c}) IN ('integer', 'real') THEN CAST({c} AS REAL) END",
                             ("integer", "real", "null")),
                  "string": ("CASE WHEN typeof({c}) IN ('text', 'integer', 'real') THEN CAST({c} AS TEXT) END",
                             ("text", "integer", "real", "null")),
                  "date": ("CASE WHEN typeof({c}) = 'text' THEN substr({c}, 1, 10) END", ("text", "null"))}
RAW = "__raw"  # suffix of the column that holds a value of the wrong kind, as the source wrote it


def _family(kind: sqltypes.TypeEngine) -> str:
    if isinstance(kind, sqltypes.Date | sqltypes.DateTime):
        return "date"
    if isinstance(kind, sqltypes.Integer):
        return "integer"
    if isinstance(kind, sqltypes.Numeric | sqltypes.Float):
        return "number"
    if isinstance(kind, sqltypes.String):
        return "string"
    return type(kind).__name__.lower()


def check_source(db: SourceDatabase) -> None:
    """Every table and column the ETL reads exists with a usable type; else one clear error
    (an unreachable server is a ServiceError naming the setting, as the source commands say)."""
    from sqlalchemy.exc import OperationalError

    try:
        inspector = inspect(db.engine())
        tables = {t.lower(): t for t in inspector.get_table_names()}
    except OperationalError as exc:
        explain = getattr(db, "explain", None)
        if explain is not None:
            raise explain(exc.orig) from exc
        raise ServiceError(f"cannot read the source database {db.url}: {str(exc.orig).strip().splitlines()[0]}",
                           hint="check RECPIPE_SOURCE_URL") from exc
    missing = [t for t in SOURCE_COLUMNS if t.lower() not in tables and t not in OPTIONAL_SOURCE]
    if missing:
        raise InputError(f"source database {db.url} has no table(s) {', '.join(missing)}",
                         hint="the ETL needs customers, products and ratings: "
                              "`recpipe source init`, or `load-dump` then `add-ratings`")
    for name in tables_read(db, tables):
        wanted = SOURCE_COLUMNS[name]
        columns = {c["name"].lower(): c for c in inspector.get_columns(tables[name.lower()])}
        absent = [c for c in wanted if c.lower() not in columns]
        if absent:
            raise InputError(f"source table {name} has no column(s) {', '.join(absent)} "
                             f"(it has {', '.join(c['name'] for c in columns.values())})",
                             hint=f"the ETL reads {name}({', '.join(wanted)})")
        for col, family in wanted.items():
            found = columns[col.lower()]["type"]
            got = _family(found)
            if got != family and not (family == "number" and got == "integer"):
                article = "an" if family[0] in "aeiou" else "a"
                raise InputError(f"source column {name}.{col} is {found}, expected {article} {family} type",
                                 hint="convert the column, or point the ETL at a view that casts it")
    db.close()


def tables_read(db: SourceDatabase, names: dict[str, str] | None = None) -> list[str]:
    """The contract's tables this source has: every required one, and orders with their lines
    when it has both (``names``: its tables by lower-case name, if already listed)."""
    if names is None:
        names = {t.lower(): t for t in inspect(db.engine()).get_table_names()}
    optional = all(t.lower() in names for t in OPTIONAL_SOURCE)
    return [t for t in SOURCE_COLUMNS if t not in OPTIONAL_SOURCE or optional]


_ARROW = {"integer": pa.int64(), "number": pa.float64(), "string": pa.string(), "date": pa.string()}
_TEXT = ("string", "date")  # families read as text, with no ``__raw`` column


def source_schema(table: str) -> pa.Schema:
    """The Arrow types a source table is read as (wide ints: the transform narrows them), and
    for each number column its ``__raw`` text: a value of the wrong kind, as the source has it."""
    columns = SOURCE_COLUMNS[table]
    return pa.schema([(col, _ARROW[family]) for col, family in columns.items()]
                     + [(col + RAW, pa.string()) for col, family in columns.items() if family not in _TEXT])


def source_query(db: SourceDatabase, table: str) -> str:
    """The SELECT that reads ``table``'s contract columns, in the source's own dialect. Servers
    keep their column types (a value of the wrong kind cannot be there: ``__raw`` is NULL);
    SQLite does not, so there it is checked per value."""
    quote = "`" if db.dialect == "mysql" else '"'
    parts, raws = [], []
    for col, family in SOURCE_COLUMNS[table].items():
        ref = f"{quote}{col}{quote}"
        raw = "NULL"
        if db.dialect == "sqlite":
            value, kinds = _SQLITE_VALUES[family]
            raw = f"CASE WHEN typeof({ref}) NOT IN ({', '.join(repr(k) for k in kinds)}) THEN CAST({ref} AS TEXT) END"
            ref = value.format(c=ref)
        elif db.dialect == "mysql":
            raw = "CAST(NULL AS CHAR)"
            ref = f"substr(CAST({ref} AS CHAR), 1, 10)" if family == "date" else ref
        elif db.dialect == "postgresql":
            raw = "CAST(NULL AS TEXT)"
            ref = f"substr(CAST({ref} AS TEXT), 1, 10)" if family == "date" else ref
        parts.append(f"{ref} AS {quote}{col}{quote}")
        if family not in _TEXT:
            raws.append(f"{raw} AS {quote}{col}{RAW}{quote}")
    return f"SELECT {', '.join(parts + raws)} FROM {quote}{table}{quote}"


def stream(db: SourceDatabase, table: str, *, batch_rows: int = 100_000,
           progress: Progress = SILENT) -> pa.RecordBatchReader:
    """``table`` as a stream of Arrow batches; ``progress.advance(table, rows)`` as they pass."""
    reader = db.read_arrow(source_query(db, table), schema=source_schema(table),
                           batch_rows=batch_rows)
    if progress is SILENT:
        return reader

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            progress.advance(table, batch.num_rows)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, counted())


def count_rows(db: SourceDatabase) -> dict[str, int]:
    """Rows per table the ETL reads (for progress bars; {} when the source cannot say)."""
    from sqlalchemy import func, select

    from recpipe.contracts.source import table

    try:
        with db.engine().connect() as conn:
            return {t: conn.execute(select(func.count()).select_from(table(t))).scalar_one() for t in tables_read(db)}
    except Exception:  # only for the progress bars: the run itself reports real problems
        return {}
