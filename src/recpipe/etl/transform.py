"""The transformation, once, as SQL that DuckDB and Spark SQL both run unchanged.

Inputs are three relations named ``customers``, ``products`` and ``ratings`` with the source
columns of ``contract.SOURCE_COLUMNS``. ``CLASSIFY`` gives every rating its features and a
``reason`` (NULL when the row keeps the contract); ``TRAINING`` and ``QUARANTINED`` select the
two outputs from it. Identifiers are unquoted: both engines match them case-insensitively
and keep the camelCase.
"""

from __future__ import annotations

CLASSIFY = """
SELECT
  r.customerNumber AS customerNumber,
  c.city AS city,
  c.state AS state,
  c.postalCode AS postalCode,
  c.country AS country,
  CAST(c.creditLimit AS DOUBLE) AS creditLimit,
  r.productCode AS productCode,
  p.productLine AS productLine,
  p.productScale AS productScale,
  CAST(p.quantityInStock AS INT) AS quantityInStock,
  CAST(p.buyPrice AS DOUBLE) AS buyPrice,
  CAST(p.MSRP AS DOUBLE) AS MSRP,
  CAST(r.productRating AS INT) AS productRating,
  CASE
    WHEN r.customerNumber IS NULL OR r.productCode IS NULL THEN 'null_key'
    WHEN r.productRating IS NULL OR r.productRating < 1 OR r.productRating > 5
      THEN 'rating_out_of_range'
    WHEN c.customerNumber IS NULL THEN 'unknown_customer'
    WHEN p.productCode IS NULL THEN 'unknown_product'
    WHEN COUNT(*) OVER (PARTITION BY r.customerNumber, r.productCode) > 1 THEN 'duplicate_pair'
    WHEN c.city IS NULL OR c.country IS NULL OR p.productLine IS NULL OR p.productScale IS NULL
      OR p.quantityInStock IS NULL OR p.buyPrice IS NULL OR p.MSRP IS NULL THEN 'missing_feature'
  END AS reason
FROM ratings r
LEFT JOIN customers c ON c.customerNumber = r.customerNumber
LEFT JOIN products p ON p.productCode = r.productCode
"""

TRAINING_COLUMNS = ("customerNumber, city, state, postalCode, country, creditLimit, productCode, "
                    "productLine, productScale, quantityInStock, buyPrice, MSRP, productRating")

TRAINING = f"SELECT {TRAINING_COLUMNS} FROM classified WHERE reason IS NULL"
QUARANTINED = ("SELECT customerNumber, productCode, productRating, reason FROM classified "
               "WHERE reason IS NOT NULL")
REASON_COUNTS = "SELECT reason, COUNT(*) AS n FROM classified WHERE reason IS NOT NULL GROUP BY reason"

# Keys of the lookup tables must be unique, or a rating would join to two feature rows.
DUPLICATE_KEYS = {
    "customers": "SELECT customerNumber FROM customers GROUP BY customerNumber HAVING COUNT(*) > 1 LIMIT 3",
    "products": "SELECT productCode FROM products GROUP BY productCode HAVING COUNT(*) > 1 LIMIT 3",
}
