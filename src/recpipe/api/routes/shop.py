"""Customers and products, as the page looks them up (tag ``console``): by search or id, a
customer's purchases and ratings, a product's similar items with their names, the product
lines. The reads are ``recpipe.vectors.shop``'s, on one of the service's threads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from recpipe.api.deps import ServiceDep, responses
from recpipe.contracts.limits import CODE_LENGTH, MAX_CUSTOMER_NUMBER, MAX_LISTED, NO_NUL
from recpipe.errors import NotFound
from recpipe.inference.recommend import Rules
from recpipe.vectors import shop

router = APIRouter(tags=["console"])
Search = Annotated[str, Query(max_length=100, pattern=NO_NUL, description="Text to look for.")]
Many = Annotated[int, Query(ge=1, le=100, description="How many at most.")]
Codes = Annotated[list[Annotated[str, Query(max_length=CODE_LENGTH, pattern=NO_NUL)]],
                  Query(max_length=MAX_LISTED, description="Product codes.")]


class Customer(BaseModel):
    id: int
    name: str | None
    city: str | None
    country: str | None
    credit_limit: float | None
    stored_embedding: bool


class Product(BaseModel):
    id: str
    name: str | None
    product_line: str | None
    scale: str | None
    vendor: str | None
    msrp: float | None
    quantity_in_stock: int | None
    embedded: bool


class Bought(Product):
    rating: int | None  # the customer's rating of it (null: not rated)


class CustomerProfile(BaseModel):
    customer: Customer
    bought: list[Bought]


class Similar(BaseModel):
    id: str
    score: float
    name: str | None = None
    product_line: str | None = None


class ProductDetail(BaseModel):
    product: Product
    model_version: str
    strategy: str
    similar: list[Similar]


@router.get("/customers", response_model=list[Customer], responses=responses(503))
async def customers(svc: ServiceDep, q: Search = "", limit: Many = 20) -> Any:
    """Customers whose number starts with ``q`` or whose name or city contains it."""
    return await svc.run(svc.read, shop.find_customers, q, limit)


@router.get("/customers/{customer_number}", response_model=CustomerProfile, responses=responses(404, 503))
async def customer(customer_number: Annotated[int, Path(ge=0, le=MAX_CUSTOMER_NUMBER)], svc: ServiceDep) -> Any:
    """A customer's profile, what they bought and how they rated it (from the source, as
    `vectors load` read it)."""
    found = await svc.run(svc.read, shop.customer, customer_number)
    if found is None:
        raise NotFound(f"no customer {customer_number} in the vector database",
                       hint="customers are loaded by `recpipe vectors load` from the source (--catalog)")
    return found


@router.get("/products", response_model=list[Product], responses=responses(503))
async def products(svc: ServiceDep, q: Search = "", ids: Codes = [], limit: Many = 20) -> Any:  # noqa: B006
    """Products by code (``ids``) or whose code, name or product line contains ``q``."""
    return await svc.run(svc.read, shop.find_products, q, ids, limit)


@router.get("/product_lines", response_model=list[str], responses=responses(503))
async def product_lines(svc: ServiceDep) -> Any:
    """Every product line of the loaded items and the catalog (the rules' product_line)."""
    return await svc.run(svc.product_lines)


@router.get("/products/{code:path}", response_model=ProductDetail, responses=responses(404, 503))
async def product(code: Annotated[str, Path(min_length=1, max_length=CODE_LENGTH, pattern=NO_NUL)],
                  svc: ServiceDep,
                  k: Annotated[int, Query(ge=1, le=50, description="How many similar items.")] = 10) -> Any:
    """A product's attributes and the items most like it, with their names."""
    return await svc.run(_product, svc, code, k)


def _product(svc: Any, code: str, k: int) -> dict[str, Any]:
    """On one of the service's threads, start to end."""
    found = svc.read(shop.find_products, None, [code], 1)
    if not found:
        raise NotFound(f"no product {code!r} in the catalog",
                       hint="search with /products?q=…; the catalog comes from `recpipe vectors load`")
    rec = svc.similar_to_item(code, Rules(k=k, in_stock=False, exclude_bought=False))
    names = {p["id"]: p for p in svc.read(shop.find_products, None, [i["id"] for i in rec.items], k)}
    similar = [{"id": i["id"], "score": i["score"], "name": names.get(i["id"], {}).get("name"),
                "product_line": names.get(i["id"], {}).get("product_line")} for i in rec.items]
    return {"product": found[0], "model_version": rec.model_version, "strategy": rec.strategy, "similar": similar}
