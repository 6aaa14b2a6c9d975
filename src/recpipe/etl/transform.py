"""The transformation, once, as SQL that DuckDB and Spark SQL both run unchanged.

Inputs are relations named ``customers``, ``products``, ``ratings``, ``orders`` and
``orderdetails`` (the last two may be empty) with the source columns of
``contract.SOURCE_COLUMNS``. ``CLASSIFY`` gives every rating its features and a
``reason`` (NULL when the row keeps the contract); ``TRAINING`` and ``QUARANTINED`` select the
two outputs from it. Identifiers are unquoted: both engines match them case-insensitively
and keep the camelCase.
"""

from __future__ import annotations

INT32 = "BETWEEN -2147483648 AND 2147483647"
DECIMAL_10_2 = 99_999_999.99  # the source's DECIMAL(10,2); NaN and infinities compare above it in both engines
NUL = "chr(0)"


def _first(cases: list[tuple[str, str]]) -> str:
    return "CASE " + " ".join(f"WHEN {when} THEN {then}" for when, then in cases) + " END"


def _value(column: str) -> str:
    """``column = 'value'``, the source's own value as text (for the quarantine)."""
    return f"concat('{column.split('.')[-1].removesuffix('__raw')} = ', coalesce(CAST({column} AS STRING), 'NULL'))"


# The first check that fails gives the reason and, where one column is to blame, what it held.
_CHECKS: list[tuple[str, str, str | None]] = [
    *((f"{c}__raw IS NOT NULL", "not_a_number", f"{c}__raw") for c in ("r.customerNumber", "r.productRating")),
    ("r.customerNumber IS NULL OR r.productCode IS NULL", "null_key", None),
    (f"r.customerNumber NOT {INT32}", "value_out_of_range", "r.customerNumber"),
    (f"instr(r.productCode, {NUL}) > 0", "invalid_text", "r.productCode"),
    ("r.productRating IS NULL OR r.productRating < 1 OR r.productRating > 5", "rating_out_of_range",
     "r.productRating"),
    ("c.customerNumber IS NULL", "unknown_customer", None),
    ("p.productCode IS NULL", "unknown_product", None),
    ("COUNT(*) OVER (PARTITION BY r.customerNumber, r.productCode) > 1", "duplicate_pair", None),
    *((f"{c}__raw IS NOT NULL", "not_a_number", f"{c}__raw")
      for c in ("c.creditLimit", "p.quantityInStock", "p.buyPrice", "p.MSRP")),
    ("c.city IS NULL OR c.country IS NULL OR p.productLine IS NULL OR p.productScale IS NULL "
     "OR p.quantityInStock IS NULL OR p.buyPrice IS NULL OR p.MSRP IS NULL", "missing_feature", None),
    (f"p.quantityInStock NOT {INT32}", "value_out_of_range", "p.quantityInStock"),
    *((f"abs({c}) > {DECIMAL_10_2}", "value_out_of_range", c) for c in ("c.creditLimit", "p.buyPrice", "p.MSRP")),
    *((f"instr({c}, {NUL}) > 0", "invalid_text", c)
      for c in ("c.city", "c.state", "c.postalCode", "c.country", "p.productLine", "p.productScale")),
]

# When each customer first ordered each product: the first line by date, order and line number
# (an unreadable date sorts last; NULLS LAST is said: the engines differ by default).
_ORDER_DATE = "TRY_CAST(o.orderDate AS DATE)"
FIRST_ORDERS = f"""
SELECT customerNumber, productCode, orderDate, orderLine FROM (
  SELECT o.customerNumber AS customerNumber, d.productCode AS productCode, {_ORDER_DATE} AS orderDate,
    CASE WHEN o.orderNumber {INT32} AND d.orderLineNumber BETWEEN 0 AND 99999
      THEN CAST(o.orderNumber AS BIGINT) * 100000 + d.orderLineNumber END AS orderLine,
    ROW_NUMBER() OVER (PARTITION BY o.customerNumber, d.productCode
                       ORDER BY {_ORDER_DATE} ASC NULLS LAST, o.orderNumber ASC NULLS LAST,
                                d.orderLineNumber ASC NULLS LAST) AS n
  FROM orderdetails d JOIN orders o ON o.orderNumber = d.orderNumber
) first_lines WHERE n = 1
"""

CLASSIFY = f"""
SELECT
  TRY_CAST(r.customerNumber AS INT) AS customerNumber,
  c.city AS city,
  c.state AS state,
  c.postalCode AS postalCode,
  c.country AS country,
  CAST(c.creditLimit AS DOUBLE) AS creditLimit,
  r.productCode AS productCode,
  p.productLine AS productLine,
  p.productScale AS productScale,
  TRY_CAST(p.quantityInStock AS INT) AS quantityInStock,
  CAST(p.buyPrice AS DOUBLE) AS buyPrice,
  CAST(p.MSRP AS DOUBLE) AS MSRP,
  TRY_CAST(r.productRating AS INT) AS productRating,
  f.orderDate AS orderDate,
  f.orderLine AS orderLine,
  {_first([(when, f"'{reason}'") for when, reason, _ in _CHECKS])} AS reason,
  {_first([(when, _value(column) if column else "NULL") for when, _, column in _CHECKS])} AS detail
FROM ratings r
LEFT JOIN customers c ON c.customerNumber = r.customerNumber
LEFT JOIN products p ON p.productCode = r.productCode
LEFT JOIN ({FIRST_ORDERS}) f ON f.customerNumber = r.customerNumber AND f.productCode = r.productCode
"""

TRAINING_COLUMNS = ("customerNumber, city, state, postalCode, country, creditLimit, productCode, "
                    "productLine, productScale, quantityInStock, buyPrice, MSRP, productRating, orderDate, orderLine")

TRAINING = f"SELECT {TRAINING_COLUMNS} FROM classified WHERE reason IS NULL"
QUARANTINED = ("SELECT customerNumber, productCode, productRating, reason, detail FROM classified "
               "WHERE reason IS NOT NULL")
REASON_COUNTS = "SELECT reason, COUNT(*) AS n FROM classified WHERE reason IS NOT NULL GROUP BY reason"

# Keys of the lookup tables must be unique, or a rating would join to two feature rows.
DUPLICATE_KEYS = {
    "customers": "SELECT customerNumber FROM customers GROUP BY customerNumber HAVING COUNT(*) > 1 LIMIT 3",
    "products": "SELECT productCode FROM products GROUP BY productCode HAVING COUNT(*) > 1 LIMIT 3",
}
