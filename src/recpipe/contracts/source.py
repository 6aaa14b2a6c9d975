"""The classicmodels sample schema plus ``ratings``, defined once.

Table names, column names (camelCase) and types follow the MySQL sample, so the same
metadata creates the tables on SQLite, MySQL/MariaDB and PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    DECIMAL,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

_MEDIUMTEXT = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_MEDIUMBLOB = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def _money() -> DECIMAL[Decimal]:
    return DECIMAL(10, 2, asdecimal=True)


productlines = Table(
    "productlines",
    metadata,
    Column("productLine", String(50), primary_key=True),
    Column("textDescription", String(4000)),
    Column("htmlDescription", _MEDIUMTEXT),
    Column("image", _MEDIUMBLOB),
)

products = Table(
    "products",
    metadata,
    Column("productCode", String(15), primary_key=True),
    Column("productName", String(70), nullable=False),
    Column("productLine", String(50), ForeignKey("productlines.productLine"), nullable=False),
    Column("productScale", String(10), nullable=False),
    Column("productVendor", String(50), nullable=False),
    Column("productDescription", Text, nullable=False),
    Column("quantityInStock", SmallInteger, nullable=False),
    Column("buyPrice", _money(), nullable=False),
    Column("MSRP", _money(), nullable=False),
    Index("productLine", "productLine"),
)

offices = Table(
    "offices",
    metadata,
    Column("officeCode", String(10), primary_key=True),
    Column("city", String(50), nullable=False),
    Column("phone", String(50), nullable=False),
    Column("addressLine1", String(50), nullable=False),
    Column("addressLine2", String(50)),
    Column("state", String(50)),
    Column("country", String(50), nullable=False),
    Column("postalCode", String(15), nullable=False),
    Column("territory", String(10), nullable=False),
)

employees = Table(
    "employees",
    metadata,
    Column("employeeNumber", Integer, primary_key=True, autoincrement=False),
    Column("lastName", String(50), nullable=False),
    Column("firstName", String(50), nullable=False),
    Column("extension", String(10), nullable=False),
    Column("email", String(100), nullable=False),
    Column("officeCode", String(10), ForeignKey("offices.officeCode"), nullable=False),
    Column("reportsTo", Integer, ForeignKey("employees.employeeNumber")),
    Column("jobTitle", String(50), nullable=False),
    Index("reportsTo", "reportsTo"),
    Index("officeCode", "officeCode"),
)

customers = Table(
    "customers",
    metadata,
    Column("customerNumber", Integer, primary_key=True, autoincrement=False),
    Column("customerName", String(50), nullable=False),
    Column("contactLastName", String(50), nullable=False),
    Column("contactFirstName", String(50), nullable=False),
    Column("phone", String(50), nullable=False),
    Column("addressLine1", String(50), nullable=False),
    Column("addressLine2", String(50)),
    Column("city", String(50), nullable=False),
    Column("state", String(50)),
    Column("postalCode", String(15)),
    Column("country", String(50), nullable=False),
    Column("salesRepEmployeeNumber", Integer, ForeignKey("employees.employeeNumber")),
    Column("creditLimit", _money()),
    Index("salesRepEmployeeNumber", "salesRepEmployeeNumber"),
)

orders = Table(
    "orders",
    metadata,
    Column("orderNumber", Integer, primary_key=True, autoincrement=False),
    Column("orderDate", Date, nullable=False),
    Column("requiredDate", Date, nullable=False),
    Column("shippedDate", Date),
    Column("status", String(15), nullable=False),
    Column("comments", Text),
    Column("customerNumber", Integer, ForeignKey("customers.customerNumber"), nullable=False),
    Index("customerNumber", "customerNumber"),
)

orderdetails = Table(
    "orderdetails",
    metadata,
    Column("orderNumber", Integer, ForeignKey("orders.orderNumber"), primary_key=True,
           autoincrement=False),
    Column("productCode", String(15), ForeignKey("products.productCode"), primary_key=True),
    Column("quantityOrdered", Integer, nullable=False),
    Column("priceEach", _money(), nullable=False),
    Column("orderLineNumber", SmallInteger, nullable=False),
    Index("productCode", "productCode"),
)

payments = Table(
    "payments",
    metadata,
    Column("customerNumber", Integer, ForeignKey("customers.customerNumber"), primary_key=True,
           autoincrement=False),
    Column("checkNumber", String(50), primary_key=True),
    Column("paymentDate", Date, nullable=False),
    Column("amount", _money(), nullable=False),
)

ratings = Table(
    "ratings",
    metadata,
    Column("customerNumber", Integer, ForeignKey("customers.customerNumber"), primary_key=True,
           autoincrement=False),
    Column("productCode", String(15), ForeignKey("products.productCode"), primary_key=True),
    Column("productRating", Integer, nullable=False),
)

# Parents before children: the order to create and fill, reversed to drop.
TABLE_ORDER: tuple[str, ...] = (
    "productlines", "products", "offices", "employees", "customers",
    "orders", "orderdetails", "payments", "ratings",
)
CLASSICMODELS_TABLES = TABLE_ORDER[:-1]


def table(name: str) -> Table:
    return metadata.tables[name]

# MySQL/MariaDB: InnoDB tables in utf8mb4 (for cities such as Łódź and Reykjavík).
for _t in metadata.tables.values():
    _t.dialect_kwargs["mysql_engine"] = "InnoDB"
    _t.dialect_kwargs["mysql_charset"] = "utf8mb4"
