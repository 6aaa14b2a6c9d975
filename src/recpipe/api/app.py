"""The FastAPI app: the seed's endpoints (DESIGN.md §7), the rich recommendation endpoint,
/health, /ready and /metrics. Errors are JSON with a clear message: 4xx for bad input, 404 for
unknown ids, 503 with Retry-After while the vector database is down; never a bare 500."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from recpipe import __version__
from recpipe.api.limits import BodyLimit
from recpipe.api.metrics import Metrics
from recpipe.api.service import Service
from recpipe.config import Settings, load_settings
from recpipe.errors import InputError, RecpipeError, ServiceError
from recpipe.inference.artifacts import EMBEDDING_DIM
from recpipe.inference.recommend import NotFound, Recommendation, Rules
from recpipe.vectors import schema

MAX_LIMIT = 1000
MAX_BATCH = 1000


class UserFeatures(BaseModel):
    """One user as the seed's Lambda sends it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    city: str | None = None
    country: str | None = None
    creditlimit: float | None = Field(default=None, alias="creditlimit", allow_inf_nan=False)

    def record(self) -> dict[str, Any]:
        return {"city": self.city, "country": self.country, "creditLimit": self.creditlimit}


class Scored(BaseModel):
    id: str | int
    score: float


class Recommendations(BaseModel):
    customer_number: int
    recommendation_id: str
    model_version: str
    strategy: str = Field(description="stored | features | popular")
    items: list[dict[str, Any]]


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items.")]


def create_app_from_env() -> FastAPI:
    """For uvicorn's worker processes (``recpipe serve --workers N``): settings from RECPIPE_*,
    service options from RECPIPE_SERVE_EF_SEARCH and RECPIPE_SERVE_RELOAD_EVERY."""
    settings = load_settings()
    ef = os.environ.get("RECPIPE_SERVE_EF_SEARCH")
    every = float(os.environ.get("RECPIPE_SERVE_RELOAD_EVERY", "10"))
    return create_app(settings, service=Service(settings, ef_search=int(ef) if ef else None, check_every=every))


def create_app(settings: Settings | None = None, *, service: Service | None = None, threads: int = 8) -> FastAPI:
    settings = settings or load_settings()
    svc = service or Service(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        # Sync endpoints run in worker threads, each with its own database connection: a
        # bounded pool keeps connections (and GIL contention) in check.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await anyio.to_thread.run_sync(svc.warm)  # model, catalog cache: not on the first request
        yield

    app = FastAPI(title="recpipe inference", version=__version__, lifespan=lifespan,
                  description="Recommendations from the two-tower model and pgvector (DESIGN.md §7).")
    app.add_middleware(BodyLimit, max_bytes=1_000_000)
    metrics.install(app)

    @app.exception_handler(RecpipeError)
    def _recpipe_error(request: Request, exc: RecpipeError) -> JSONResponse:
        if isinstance(exc, NotFound):
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=404)
        if isinstance(exc, ServiceError):
            return JSONResponse({"error": exc.message, "hint": exc.hint or "retry shortly"}, status_code=503,
                                headers={"Retry-After": "1"})
        status = 400 if isinstance(exc, InputError) else 500
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=status)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return JSONResponse({"error": f"invalid request: {first['where']}: {first['problem']}",
                             "problems": problems}, status_code=422)

    def _headers(response: Response, rec: Any) -> None:
        response.headers["X-Recommendation-Id"] = rec.recommendation_id
        response.headers["X-Model-Version"] = rec.model_version

    # -- the seed's endpoints ------------------------------------------------------------------
    @app.post("/user_embeddings", response_model=list[list[float]], tags=["seed"])
    def user_embeddings(users: Annotated[list[UserFeatures], Body(max_length=MAX_BATCH)], response: Response
                        ) -> list[list[float]]:
        """Embeddings for a list of ``{city, country, creditlimit}`` (the user tower, in numpy)."""
        model = svc.models.get()
        response.headers["X-Model-Version"] = model.version
        if not users:
            return []
        embeddings, _ = model.user_embeddings([u.record() for u in users])
        return embeddings.tolist()

    @app.post("/items_from_user", response_model=list[Scored], tags=["seed"])
    def items_from_user(embedding: Annotated[list[float], Body(min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM)],
                        response: Response, limit: Limit = 10) -> list[dict[str, Any]]:
        """Items for one user embedding (one element of /user_embeddings' answer)."""
        model = svc.models.get()
        with svc.queries() as q:  # a non-finite value is an InputError (400) there
            found = q.items_for_embedding(embedding, limit)
        rec = Recommendation(model.version, "embedding", [s.to_json() for s in found])
        _headers(response, rec)
        return rec.items

    @app.get("/items_from_item", response_model=list[Scored], tags=["seed"])
    def items_from_item(item_id: Annotated[str, Query(min_length=1, max_length=64)], response: Response,
                        limit: Limit = 10) -> list[dict[str, Any]]:
        """Items similar to a product (never itself). A catalog product without an embedding yet
        gets popular items of its product line; an unknown id is a 404."""
        with svc.queries() as q:
            rec = svc.recommender.similar_to_item(q, item_id, Rules(k=limit, in_stock=False, exclude_bought=False))
        _headers(response, rec)
        return [{"id": i["id"], "score": i["score"]} for i in rec.items]

    # -- the rich endpoint -----------------------------------------------------------------------
    @app.get("/recommendations/{customer_number}", response_model=Recommendations, tags=["recommendations"])
    def recommendations(
        customer_number: int,
        k: Limit = 10,
        exclude: Annotated[list[str] | None, Query(max_length=MAX_LIMIT, description="Product codes to leave out.")] = None,
        cart: Annotated[list[str] | None, Query(max_length=MAX_LIMIT, description="Products in the cart (left out).")] = None,
        exclude_bought: Annotated[bool, Query(description="Leave out what the customer already bought.")] = True,
        in_stock: Annotated[bool, Query(description="Only items in stock.")] = True,
        product_line: Annotated[str | None, Query(max_length=50)] = None,
        max_per_line: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="At most this many per product line.")] = None,
        city: Annotated[str | None, Query(max_length=50, description="For a customer without a stored embedding.")] = None,
        country: Annotated[str | None, Query(max_length=50)] = None,
        credit_limit: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    ) -> Response:
        """Recommendations for a customer, with the business rules as parameters."""
        rules = Rules(k=k, exclude=tuple(exclude or ()), cart=tuple(cart or ()), exclude_bought=exclude_bought,
                      in_stock=in_stock, product_line=product_line, max_per_line=max_per_line)
        features = {"city": city, "country": country, "creditLimit": credit_limit} \
            if any(v is not None for v in (city, country, credit_limit)) else None
        with svc.queries() as q:
            rec = svc.recommender.for_customer(q, customer_number, features, rules)
        # built here, already valid: returning a Response skips FastAPI's re-validation
        return JSONResponse({"customer_number": customer_number, **rec.to_json()},
                            headers={"X-Recommendation-Id": rec.recommendation_id, "X-Model-Version": rec.model_version})

    # -- operations --------------------------------------------------------------------------------
    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """The process answers (nothing else is checked)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    def ready() -> JSONResponse:
        """200 once the model is loaded and the vector database answers; 503 otherwise."""
        try:
            model = svc.models.get()
            with svc.queries() as q:
                q.conn.execute(f"SELECT 1 FROM {schema.ITEMS} LIMIT 1").fetchall()
        except RecpipeError as exc:
            return JSONResponse({"ready": False, "error": exc.message}, status_code=503, headers={"Retry-After": "1"})
        except Exception as exc:  # e.g. no item_emb table yet
            return JSONResponse({"ready": False, "error": str(exc).strip().splitlines()[0]}, status_code=503,
                                headers={"Retry-After": "1"})
        return JSONResponse({"ready": True, "model_version": model.version})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus text format: request counts and latency histograms per route."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app
