"""The training dataset's contract: its columns and types, and what gets quarantined."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recpipe.errors import InputError, NotPublished

if TYPE_CHECKING:
    import pyarrow as pa

DATASET = "ratings_ml_training"
QUARANTINE = "ratings_ml_training_quarantine"
MANIFEST = "_manifest.json"
PARTITION_KEY = "customerNumber"
ENGINES = ("duckdb", "spark")  # what can build it: DuckDB locally, Spark (the AWS Glue job)
# How the files are laid out (``format.layout`` in the manifest; missing: partitioned).
# partitioned (the default, the seed's contract): customerNumber=<n>/part-0.parquet, one file per
#   customer, customerNumber in the path only.
# compact: part-*.parquet directly in the dataset, each holding whole customers (bucketed by
#   customerNumber, then cut at COMPACT_ROWS rows), sorted by customer and product, customerNumber
#   a column like the others. 10M ratings are a few dozen files instead of 600,000.
LAYOUTS = ("partitioned", "compact")
COMPACT_ROWS = 1_000_000

# The dataset's columns, in this order. customerNumber is the Hive partition key (customerNumber=<n>/).
# (name, Arrow type, nullable); TRAINING_SCHEMA / QUARANTINE_SCHEMA are the Arrow schemas, built on
# first use so that serving, which never reads the dataset, does not import Arrow.
TRAINING_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("customerNumber", "int32", False), ("city", "string", False), ("state", "string", True),
    ("postalCode", "string", True), ("country", "string", False), ("creditLimit", "float64", True),
    ("productCode", "string", False), ("productLine", "string", False), ("productScale", "string", False),
    ("quantityInStock", "int32", False), ("buyPrice", "float64", False), ("MSRP", "float64", False),
    ("productRating", "int32", False),
    # When the customer first ordered the product (orders ⋈ orderdetails; NULL: never ordered, or
    # the source has no orders): the time order training's session model learns from.
    # orderLine orders a day's lines: orderNumber · 100000 + orderLineNumber.
    ("orderDate", "date32", True), ("orderLine", "int64", True),
)
ORDER_COLUMNS = ("orderDate", "orderLine")  # absent from datasets written before they were added
FILE_COLUMNS = [name for name, _, _ in TRAINING_COLUMNS if name != PARTITION_KEY]
QUARANTINE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("customerNumber", "int32", True), ("productCode", "string", True), ("productRating", "int32", True),
    ("reason", "string", False),
    ("detail", "string", True),  # the column to blame and the source's own value, e.g. "productRating = 4 stars"
)
_SCHEMAS = {"TRAINING_SCHEMA": TRAINING_COLUMNS, "QUARANTINE_SCHEMA": QUARANTINE_COLUMNS}


def __getattr__(name: str) -> Any:
    """``TRAINING_SCHEMA`` and ``QUARANTINE_SCHEMA`` as ``pyarrow.Schema`` (PEP 562)."""
    if name in _SCHEMAS:
        import pyarrow as pa

        schema = pa.schema([pa.field(n, getattr(pa, t)(), nullable=null) for n, t, null in _SCHEMAS[name]])
        globals()[name] = schema
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Why a rating row is set aside: the first check that fails is recorded (the keys, the rating, the
# joins, then the features; etl/transform.py holds the checks in their order).
REASONS: dict[str, str] = {
    "not_a_number": "a number column holds text or a fraction where the source has no types (SQLite)",
    "null_key": "customerNumber or productCode is NULL",
    "value_out_of_range": "customerNumber or quantityInStock outside int32, or creditLimit, buyPrice or MSRP "
                          "outside DECIMAL(10,2) (or not finite)",
    "invalid_text": "a text column holds a NUL character (PostgreSQL cannot store it)",
    "rating_out_of_range": "productRating is NULL or outside 1-5",
    "unknown_customer": "customerNumber is not in customers",
    "unknown_product": "productCode is not in products",
    "duplicate_pair": "the (customerNumber, productCode) pair is rated more than once; every copy is set aside",
    "missing_feature": "a feature the contract requires (city, country, productLine, productScale, "
                       "quantityInStock, buyPrice, MSRP) is NULL",
}

# What the ETL reads from the source: table -> column -> the family of type it must have.
SOURCE_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"customerNumber": "integer", "city": "string", "state": "string",
                  "postalCode": "string", "country": "string", "creditLimit": "number"},
    "products": {"productCode": "string", "productLine": "string", "productScale": "string",
                 "quantityInStock": "integer", "buyPrice": "number", "MSRP": "number"},
    "ratings": {"customerNumber": "integer", "productCode": "string", "productRating": "integer"},
    "orders": {"orderNumber": "integer", "orderDate": "date", "customerNumber": "integer"},
    "orderdetails": {"orderNumber": "integer", "productCode": "string", "orderLineNumber": "integer"},
}
# Read when the source has them (both): without them the dataset has no time order (NULL order columns).
OPTIONAL_SOURCE = ("orders", "orderdetails")


def schema_document(schema: pa.Schema) -> list[dict[str, object]]:
    """The schema as the manifest records it."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


class QuarantineSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    rows: int
    fraction: float
    by_reason: dict[str, int]
    reasons: dict[str, str]
    location: str
    columns: list[dict[str, Any]] = Field(alias="schema")


class DatasetManifest(BaseModel):
    """``<lake>/ratings_ml_training/_manifest.json``: what the ETL published. Written only by
    ``recpipe.etl.pipeline``, read only through :meth:`read`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    dataset: str
    version: str
    created_at: str
    recpipe_version: str
    engine: str
    source: str
    source_rows: dict[str, int]
    rows: int
    partition_key: str
    partitions: int
    files: int
    bytes: int
    fingerprint: str
    columns: list[dict[str, Any]] = Field(alias="schema")
    format: dict[str, str]
    location: str
    quarantine: QuarantineSummary
    generator: dict[str, Any] | None = None  # a synthetic shop's parameters, oracle and floors
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, doc: Any, where: str) -> DatasetManifest:
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{where} is not a training-dataset manifest: {'.'.join(map(str, first['loc']))} "
                             f"{first['msg'].lower()}",
                             hint="publish the dataset again with `recpipe etl run`") from exc

    @classmethod
    def read(cls, lake: Any) -> DatasetManifest:
        """The manifest of the dataset published in ``lake`` (a ``recpipe.adapters.Lake``)."""
        doc = lake.read_json(f"{DATASET}/{MANIFEST}")
        if doc is None:
            raise NotPublished(f"no training dataset at {lake.location(DATASET)} (its {MANIFEST} is missing)",
                             hint="run `recpipe etl run` first, or point RECPIPE_LAKE_URL at the lake that has it")
        return cls.from_json(doc, f"{lake.location(DATASET)}/{MANIFEST}")
