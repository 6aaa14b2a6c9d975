"""The FastAPI app: the seed's endpoints (``recpipe.contracts``' docstring says what the seed is), the rich recommendation endpoint,
/health, /ready and /metrics, and the page at / (``recpipe.api.page``). Errors are JSON with a clear message: 4xx for bad input, 404 for
unknown ids, 503 with Retry-After while the vector database is down; never a bare 500."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from recpipe import __version__
from recpipe.api.auth import ApiKey, declare_bearer
from recpipe.api.limits import MAX_BODY_BYTES, BodyLimit, CollapseSlashes
from recpipe.api.metrics import Metrics
from recpipe.api.schema import (
    ERRORS,
    Ready,
    Recommendations,
    known_query_only,
    public,
    validation_error,
)
from recpipe.api.service import Service
from recpipe.config import Settings, load_settings
from recpipe.contracts.artifacts import EMBEDDING_DIM
from recpipe.contracts.limits import MAX_BATCH, MAX_CREDIT_LIMIT, MAX_CUSTOMER_NUMBER, MAX_K, NO_NUL
from recpipe.contracts.vectors import Scored
from recpipe.errors import InputError, NotPublished, RecpipeError, ServiceError, said
from recpipe.inference.recommend import NotFound, Recommendation, Rules

GIL_SWITCH_SECONDS = 0.0003


class UserFeatures(BaseModel):
    """One user as the seed's Lambda sends it; ``creditLimit`` (the source's spelling) is read as
    ``creditlimit``; any other key is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")
    city: str | None = Field(None, strict=True, max_length=50)
    country: str | None = Field(None, strict=True, max_length=50)
    creditlimit: float | None = Field(None, allow_inf_nan=False, strict=True,  # a bool is not a number
                                      ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT,
                                      validation_alias=AliasChoices("creditlimit", "creditLimit"))

    def record(self) -> dict[str, Any]:
        return {"city": self.city, "country": self.country, "creditLimit": self.creditlimit}


# A product code (classicmodels: VARCHAR(15)); PostgreSQL text cannot hold NUL. Lists stay
# short enough that a URL carrying them passes the HTTP server's request-line limit.
CODE_LENGTH = 32
MAX_LISTED = 100
Code = Annotated[str, Field(min_length=1, max_length=CODE_LENGTH, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")]


class RecommendationQuery(BaseModel):
    """The rich endpoint's query parameters: the business rules (one model, validated at once)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("product_line", mode="after")
    @classmethod
    def _empty_is_any(cls, line: str | None) -> str | None:
        return line or None  # ?product_line= (as a form with nothing chosen sends it) means any line
    k: int = Field(10, ge=1, le=MAX_K, description="How many items.")
    exclude: list[Code] = Field([], max_length=MAX_LISTED, description="Product codes to leave out.")
    cart: list[Code] = Field([], max_length=MAX_LISTED, description="Products in the cart (left out).")
    exclude_bought: bool = Field(True, description="Leave out what the customer already bought.")
    in_stock: bool = Field(True, description="Only items in stock.")
    product_line: str | None = Field(None, max_length=50, pattern=NO_NUL,
                                     description="Only this product line (empty: any).")
    max_per_line: int | None = Field(None, ge=1, le=MAX_K, description="At most this many per product line.")
    city: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    country: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    credit_limit: float | None = Field(None, allow_inf_nan=False, ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT,
                                       description="For a customer without a stored embedding.")


def create_app_from_env() -> FastAPI:
    """For uvicorn's worker processes (``recpipe serve --workers N``): every setting, the
    service's options included (RECPIPE_SERVE_*), from the environment."""
    return create_app(load_settings())


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    settings = settings or load_settings()
    svc = service or Service(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A database thread whose query returned waits for the GIL while the event loop runs;
        # Python hands it over every 5 ms by default. 0.3 ms: p99 at 16 clients −10% (bench/serve.py).
        before = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        await svc.run(svc.warm)  # model, catalog cache: not on the first request
        try:
            yield
        finally:
            svc.close()
            sys.setswitchinterval(before)


    from fastapi_offline import FastAPIOffline  # /docs and /redoc from the package: no CDN

    app = FastAPIOffline(title="recpipe inference", version=__version__, lifespan=lifespan,
                         description="Recommendations from the two-tower model and pgvector.",
                         dependencies=[Depends(known_query_only)])
    # outermost last: slashes collapsed, then metrics and the request log, the key, the size limit
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if settings.api_key:
        app.add_middleware(ApiKey, key=settings.api_key)
        declare_bearer(app)
    metrics.install(app)
    app.add_middleware(CollapseSlashes)
    declared = {code for code in ERRORS if code != 401 or settings.api_key}

    @app.exception_handler(RecpipeError)
    def _recpipe_error(request: Request, exc: RecpipeError) -> JSONResponse:
        if isinstance(exc, NotFound):
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=404)
        if isinstance(exc, ServiceError | NotPublished):
            return JSONResponse({"error": public(exc.message), "hint": public(exc.hint) or "retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        status = 422 if isinstance(exc, InputError) else 500
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """404 (no such path) and 405 (wrong method) in the same shape as every other error."""
        if exc.status_code == 400:  # FastAPI: a body it could not read at all (e.g. not UTF-8)
            why = ("the body is not JSON this service reads: it must be UTF-8, nested at most a few hundred "
                   "levels deep, with numbers of at most 4,300 digits")
            return JSONResponse(validation_error([{"loc": ("body",), "msg": why}]), status_code=422)
        hint = "see /docs for the endpoints" if exc.status_code in (404, 405) else None
        return JSONResponse({"error": str(exc.detail), "hint": hint}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error(exc.errors()), status_code=422)

    def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
        """The error answers a route can give, declared in the OpenAPI document."""
        return {code: ERRORS[code] for code in (401, 413, 422, *statuses) if code in declared}

    def _json(body: Any, rec: Recommendation) -> JSONResponse:
        """Built here, already valid: returning a Response skips FastAPI's re-validation of the
        response model (a sixth of a request's CPU); the model still documents it."""
        return JSONResponse(body, headers={"X-Recommendation-Id": rec.recommendation_id,
                                           "X-Model-Version": rec.model_version})

    # Endpoints are coroutines: only the model and database work goes to the service's small
    # thread pool (see recpipe.api.service), the rest stays on the event loop.

    # -- the seed's endpoints ------------------------------------------------------------------
    @app.post("/user_embeddings", response_model=list[list[float]], tags=["seed"], responses=responses(503))
    async def user_embeddings(users: Annotated[list[UserFeatures], Body(max_length=MAX_BATCH)]) -> Response:
        """Embeddings for a list of ``{city, country, creditlimit}`` (the user tower, in numpy)."""
        model, embeddings = await svc.run(svc.user_embeddings, [u.record() for u in users])
        return JSONResponse(embeddings, headers={"X-Model-Version": model.version})

    @app.post("/items_from_user", response_model=list[Scored], tags=["seed"], responses=responses(503))
    async def items_from_user(embedding: Annotated[list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
                                                   Body(min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM,
                                                        json_schema_extra={"contains": {"not": {"const": 0}}},
                                                        description="Not all zero: a direction.")],
                              limit: Limit = 10) -> Response:
        """Items for one user embedding (one element of /user_embeddings' answer)."""
        rec = await svc.run(svc.items_for_embedding, embedding, limit)
        return _json(rec.items, rec)

    @app.get("/items_from_item", response_model=list[Scored], tags=["seed"], responses=responses(404, 503))
    async def items_from_item(item_id: Annotated[str, Query(min_length=1, max_length=CODE_LENGTH, pattern=NO_NUL)],
                              limit: Limit = 10) -> Response:
        """Items similar to a product (never itself). A catalog product without an embedding yet
        gets popular items of its product line; an unknown id is a 404."""
        rec = await svc.run(svc.similar_to_item, item_id, Rules(k=limit, in_stock=False, exclude_bought=False))
        return _json([{"id": i["id"], "score": i["score"]} for i in rec.items], rec)

    # -- the rich endpoint -----------------------------------------------------------------------
    @app.get("/recommendations/{customer_number}", response_model=Recommendations, tags=["recommendations"],
             responses=responses(404, 503))
    async def recommendations(customer_number: Annotated[int, Path(ge=0, le=MAX_CUSTOMER_NUMBER,
                                                                   description="A customerNumber.")],
                              ask: Annotated[RecommendationQuery, Query()]) -> Response:
        """Recommendations for a customer, with the business rules as parameters."""
        rules = Rules(k=ask.k, exclude=tuple(ask.exclude), cart=tuple(ask.cart), exclude_bought=ask.exclude_bought,
                      in_stock=ask.in_stock, product_line=ask.product_line, max_per_line=ask.max_per_line)
        features = {"city": ask.city, "country": ask.country, "creditLimit": ask.credit_limit} \
            if any(v is not None for v in (ask.city, ask.country, ask.credit_limit)) else None
        rec = await svc.run(svc.for_customer, customer_number, features, rules)
        return _json({"customer_number": customer_number, **rec.to_json()}, rec)

    # -- operations --------------------------------------------------------------------------------
    @app.get("/health", tags=["operations"], responses=responses())
    async def health() -> dict[str, str]:
        """The process answers (nothing else is checked)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], response_model=Ready,
             responses=responses() | {503: {"model": Ready, "description": "Not ready (yet): retry after a while"}})
    async def ready() -> JSONResponse:
        """200 once the vector database answers and holds a load; 503 otherwise. The served
        model is the one whose embeddings are loaded; ``published_model_version`` is the
        artifacts' latest, served after the next ``recpipe vectors load``."""
        try:
            model, published = await svc.run(svc.ready)
        except Exception as exc:
            error = exc.message if isinstance(exc, RecpipeError) else said(exc)
            return JSONResponse({"ready": False, "error": public(error)}, status_code=503,
                                headers={"Retry-After": "1"})
        body: dict[str, Any] = {"ready": True, "model_version": model.version, "published_model_version": published}
        if published is not None and published != model.version:
            body["waiting"] = (f"model {published} is published but not loaded: run `recpipe vectors load` "
                               f"to serve it (model {model.version} is served until then)")
        return JSONResponse(body)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse, responses=responses())
    def prometheus() -> Response:
        """Prometheus text format: request counts and latency histograms per route."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    from recpipe.api.page.routes import install

    install(app, svc, settings, metrics, responses)  # the page at / and what only it reads

    return app
