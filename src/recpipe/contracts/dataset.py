"""The training dataset's contract: its columns and types, and what gets quarantined."""

from __future__ import annotations

import pyarrow as pa

DATASET = "ratings_ml_training"
QUARANTINE = "ratings_ml_training_quarantine"
MANIFEST = "_manifest.json"
PARTITION_KEY = "customerNumber"
ENGINES = ("duckdb", "spark")  # what can build it: DuckDB locally, Spark (the AWS Glue job)

# The dataset's columns, in this order. customerNumber is the Hive partition key (customerNumber=<n>/).
TRAINING_SCHEMA = pa.schema([
    pa.field("customerNumber", pa.int32(), nullable=False),
    pa.field("city", pa.string(), nullable=False),
    pa.field("state", pa.string()),
    pa.field("postalCode", pa.string()),
    pa.field("country", pa.string(), nullable=False),
    pa.field("creditLimit", pa.float64()),
    pa.field("productCode", pa.string(), nullable=False),
    pa.field("productLine", pa.string(), nullable=False),
    pa.field("productScale", pa.string(), nullable=False),
    pa.field("quantityInStock", pa.int32(), nullable=False),
    pa.field("buyPrice", pa.float64(), nullable=False),
    pa.field("MSRP", pa.float64(), nullable=False),
    pa.field("productRating", pa.int32(), nullable=False),
])
FILE_COLUMNS = [f.name for f in TRAINING_SCHEMA if f.name != PARTITION_KEY]

QUARANTINE_SCHEMA = pa.schema([
    pa.field("customerNumber", pa.int32()),
    pa.field("productCode", pa.string()),
    pa.field("productRating", pa.int32()),
    pa.field("reason", pa.string(), nullable=False),
])

# Why a rating row is set aside, checked in this order (the first that applies is recorded).
REASONS: dict[str, str] = {
    "null_key": "customerNumber or productCode is NULL",
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
}


def schema_document(schema: pa.Schema) -> list[dict[str, object]]:
    """The schema as the manifest records it."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
