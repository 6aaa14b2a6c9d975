"""The shop's catalog, customers and purchase history, read from the source database for
serving: products that have no embedding yet (added after training), what each customer has
already bought, and who the customers are (the page looks them up)."""

from __future__ import annotations

import pyarrow as pa

from recpipe.adapters.base import SourceDatabase
from recpipe.contracts.limits import MAX_CREDIT_LIMIT
from recpipe.source.read import check_source, stream

PURCHASES_SCHEMA = pa.schema([("customerNumber", pa.int32()), ("productCode", pa.string()),
                              ("productRating", pa.int32())])


CATALOG_COLUMNS = {"productCode": "id", "productLine": "product_line", "quantityInStock": "quantity_in_stock",
                   "productScale": "scale", "MSRP": "msrp"}
CUSTOMER_COLUMNS = {"customerNumber": "id", "city": "city", "country": "country", "creditLimit": "credit_limit"}


def read_catalog(db: SourceDatabase) -> pa.Table:
    """Every product as ``id, product_line, quantity_in_stock`` (the item attributes' columns)
    and what a person reads: ``name, scale, vendor, msrp``. A value PostgreSQL cannot hold is
    left out (NULL), and a product whose code it cannot hold is left out whole (the ETL
    quarantines its ratings with the reason)."""
    check_source(db)
    table = stream(db, "products").read_all().select(list(CATALOG_COLUMNS)).rename_columns(list(CATALOG_COLUMNS.values()))
    table = _storable(table, key="id", ints=("quantity_in_stock",), money=("msrp",))
    return _storable(_with_names(db, table, "products", "productCode", pa.string(), ("productName", "productVendor"),
                                 ("name", "vendor")), key="id")


def read_customers(db: SourceDatabase) -> pa.Table:
    """Every customer as ``id, city, country, credit_limit, name`` (values PostgreSQL cannot
    hold, or the contract's types do not, left out as for the catalog)."""
    table = stream(db, "customers").read_all().select(list(CUSTOMER_COLUMNS)).rename_columns(list(CUSTOMER_COLUMNS.values()))
    table = _storable(table, key="id", ints=("id",), money=("credit_limit",))
    return _storable(_with_names(db, table, "customers", "customerNumber", pa.int64(), ("customerName",), ("name",)),
                     key="id")


def _storable(table: pa.Table, *, key: str, ints: tuple[str, ...] = (), money: tuple[str, ...] = ()) -> pa.Table:
    """Rows whose key PostgreSQL cannot store (NUL, NULL, outside int32) dropped; other text with
    a NUL, ints outside int32 and amounts outside DECIMAL(10,2) (or not finite) set to NULL."""
    import pyarrow.compute as pc

    for name in table.column_names:
        column = table[name]
        bad = None
        if pa.types.is_string(column.type):
            bad = pc.match_substring(column, "\x00")
        elif name in ints:
            bad = pc.or_(pc.less(column, -(2**31)), pc.greater(column, 2**31 - 1))
        elif name in money:
            bad = pc.invert(pc.less_equal(pc.abs(column), MAX_CREDIT_LIMIT))  # NaN compares false
        if bad is None:
            continue
        bad = pc.fill_null(bad, False)
        if name == key:
            table = table.filter(pc.and_(pc.invert(bad), pc.is_valid(column)))
        else:
            table = table.set_column(table.column_names.index(name), name, pc.if_else(bad, None, column))
    return table


def _with_names(db: SourceDatabase, table: pa.Table, source: str, key: str, key_type: pa.DataType,
                columns: tuple[str, ...], names: tuple[str, ...]) -> pa.Table:
    """``table`` (keyed by ``id``) with text columns the ETL contract does not read."""
    q = "`" if db.dialect == "mysql" else '"'
    sql = f"SELECT {', '.join(f'{q}{c}{q}' for c in (key, *columns))} FROM {q}{source}{q}"
    extra = db.read_arrow(sql, schema=pa.schema([(key, key_type), *((c, pa.string()) for c in columns)])).read_all()
    rows = {k: i for i, k in enumerate(extra[key].to_pylist())}
    at = [rows.get(k) for k in table["id"].to_pylist()]
    for column, name in zip(columns, names, strict=True):
        values = extra[column].to_pylist()
        table = table.append_column(name, pa.array([None if i is None else values[i] for i in at], pa.string()))
    return table


def read_purchases(db: SourceDatabase) -> pa.Table:
    """Distinct (customerNumber, productCode) pairs ever ordered, with the customer's rating of
    the product (the highest if rated twice; null if not rated)."""
    q = "`" if db.dialect == "mysql" else '"'
    customer, product = f"o.{q}customerNumber{q}", f"d.{q}productCode{q}"
    rating = f"r.{q}productRating{q}"
    if db.dialect == "sqlite":  # typeless: '4 stars' is no rating (the ETL quarantines it)
        rating = f"CASE WHEN typeof({rating}) = 'integer' AND {rating} BETWEEN 1 AND 5 THEN {rating} END"
    else:
        rating = f"CASE WHEN {rating} BETWEEN 1 AND 5 THEN {rating} END"
    sql = (f"SELECT {customer} AS {q}customerNumber{q}, {product} AS {q}productCode{q}, "
           f"MAX({rating}) AS {q}productRating{q} "
           f"FROM {q}orders{q} o JOIN {q}orderdetails{q} d ON d.{q}orderNumber{q} = o.{q}orderNumber{q} "
           f"LEFT JOIN {q}ratings{q} r ON r.{q}customerNumber{q} = {customer} AND r.{q}productCode{q} = {product} "
           f"GROUP BY {customer}, {product}")
    wide = pa.schema([("customerNumber", pa.int64()), ("productCode", pa.string()), ("productRating", pa.int64())])
    table = _storable(db.read_arrow(sql, schema=wide).read_all(), key="productCode", ints=("customerNumber",))
    import pyarrow.compute as pc

    return table.filter(pc.is_valid(table["customerNumber"])).cast(PURCHASES_SCHEMA)
