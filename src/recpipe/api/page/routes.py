"""The page at ``/`` and the read-only endpoints it uses beside the public API (tag
``console``): customers and products by search or id, a product's similar items, the latest
enriched events, the pipeline's state and a 2-D map of the item embeddings. Recommendations
come from the public ``/recommendations`` itself, so the page shows what the API answers."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from recpipe.api.metrics import Metrics
from recpipe.api.page import status
from recpipe.api.service import Service
from recpipe.config import Settings
from recpipe.contracts.limits import MAX_CUSTOMER_NUMBER, NO_NUL
from recpipe.inference.recommend import NotFound, Rules
from recpipe.vectors import shop
from recpipe.vectors.pipeline import status as vectors_status

STATIC = resources.files("recpipe.api.page") / "static"
Search = Annotated[str, Query(max_length=100, pattern=NO_NUL, description="Text to look for.")]
Many = Annotated[int, Query(ge=1, le=100, description="How many at most.")]


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


class Live(BaseModel):
    ok: bool
    sink: str | None = None
    records: list[dict[str, Any]] = []
    read_at: float | None = None
    error: str | None = None
    hint: str | None = None


class Point(BaseModel):
    id: str
    product_line: str | None
    x: float
    y: float


class ItemMap(BaseModel):
    items: int
    variance: list[float]
    points: list[Point]


def install(app: FastAPI, svc: Service, settings: Settings, metrics: Metrics,
            responses: Callable[..., dict[int | str, dict[str, Any]]]) -> None:
    """Add the page and its endpoints to ``app``."""
    def on_db(fn: Callable[..., Any], *args: Any) -> Any:
        with svc.queries() as q:
            return q.read(fn, *args)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/customers", response_model=list[Customer], tags=["console"], responses=responses(503))
    async def customers(q: Search = "", limit: Many = 20) -> Any:
        """Customers whose number starts with ``q`` or whose name or city contains it."""
        return await svc.run(on_db, shop.find_customers, q, limit)

    @app.get("/customers/{customer_number}", response_model=CustomerProfile, tags=["console"],
             responses=responses(404, 503))
    async def customer(customer_number: Annotated[int, Path(ge=0, le=MAX_CUSTOMER_NUMBER)]) -> Any:
        """A customer's profile, what they bought and how they rated it (from the source, as
        `vectors load` read it)."""
        found = await svc.run(on_db, shop.customer, customer_number)
        if found is None:
            raise NotFound(f"no customer {customer_number} in the vector database",
                           hint="customers are loaded by `recpipe vectors load` from the source (--catalog)")
        return found

    @app.get("/products", response_model=list[Product], tags=["console"], responses=responses(503))
    async def products(q: Search = "", ids: Annotated[list[Annotated[str, Query(max_length=32, pattern=NO_NUL)]],
                                                      Query(max_length=100, description="Product codes.")] = [],  # noqa: B006
                       limit: Many = 20) -> Any:
        """Products by code (``ids``) or whose code, name or product line contains ``q``."""
        return await svc.run(on_db, shop.find_products, q, ids, limit)

    @app.get("/product_lines", response_model=list[str], tags=["console"], responses=responses(503))
    async def product_lines() -> Any:
        """Every product line of the loaded items and the catalog (the rules' product_line)."""
        def read() -> list[str]:
            with svc.queries() as q:
                return q.product_lines()

        return await svc.run(read)

    @app.get("/products/{code:path}", response_model=ProductDetail, tags=["console"], responses=responses(404, 503))
    async def product(code: Annotated[str, Path(min_length=1, max_length=32, pattern=NO_NUL)],
                      k: Annotated[int, Query(ge=1, le=50, description="How many similar items.")] = 10) -> Any:
        """A product's attributes and the items most like it, with their names."""
        def read() -> dict[str, Any]:  # on one of the service's threads, start to end
            found = on_db(shop.find_products, None, [code], 1)
            if not found:
                raise NotFound(f"no product {code!r} in the catalog",
                               hint="search with /products?q=…; the catalog comes from `recpipe vectors load`")
            rec = svc.similar_to_item(code, Rules(k=k, in_stock=False, exclude_bought=False))
            names = {p["id"]: p for p in on_db(shop.find_products, None, [i["id"] for i in rec.items], k)}
            similar = [{"id": i["id"], "score": i["score"], "name": names.get(i["id"], {}).get("name"),
                        "product_line": names.get(i["id"], {}).get("product_line")} for i in rec.items]
            return {"product": found[0], "model_version": rec.model_version, "strategy": rec.strategy,
                    "similar": similar}

        return await svc.run(read)

    @app.get("/live", response_model=Live, tags=["console"], responses=responses())
    async def live(n: Annotated[int, Query(ge=1, le=100, description="How many records.")] = 20) -> Any:
        """The latest enriched events the streaming path delivered (RECPIPE_RECOMMENDATIONS_URL)."""
        return await svc.run(status.section, lambda: status.live(settings, n))

    @app.get("/pipeline", tags=["console"], responses=responses())
    async def pipeline() -> dict[str, Any]:
        """Each stage's state: the training set, the model, the vector database, the stream and
        this service's traffic; a stage that cannot be read says why."""
        return {"etl": await svc.run(status.section, lambda: status.etl(settings)),
                "model": await svc.run(status.section, lambda: status.model(settings)),
                "vectors": await svc.run(status.section, lambda: on_db(vectors_status)),
                "stream": await svc.run(status.section, lambda: status.stream(settings)),
                "service": {"ok": True, "routes": metrics.summary(), "uptime_seconds": metrics.uptime()}}

    @app.get("/pipeline/item_map", response_model=ItemMap, tags=["console"], responses=responses(503))
    async def item_map(limit: Annotated[int, Query(ge=3, le=20_000, description="Items at most.")] = 5000) -> Any:
        """The item embeddings on their two main axes (PCA), for a map coloured by product line."""
        return await svc.run(on_db, shop.item_map, limit)
