"""The FastAPI app: the seed's endpoints (``recpipe.contracts``' docstring says what the seed
is), the rich recommendation endpoint, /health, /ready and /metrics, and the page at /
(``recpipe.api.routes``, one router per resource). Errors are JSON with a clear message: 4xx
for bad input, 404 for unknown ids, 503 with Retry-After while the vector database is down;
never a bare 500 (``recpipe.api.errors``)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from recpipe import __version__
from recpipe.api import errors
from recpipe.api.auth import ApiKey, document
from recpipe.api.limits import MAX_BODY_BYTES, BodyLimit, CollapseSlashes
from recpipe.api.metrics import Metrics
from recpipe.api.routes import ROUTERS
from recpipe.api.routes.page import mount_static
from recpipe.api.schema import known_query_only
from recpipe.api.service import Service
from recpipe.config import Settings, load_settings

# A database thread whose query returned waits for the GIL while the event loop runs; Python
# hands it over every 5 ms by default. 0.3 ms: p99 at 16 clients −10% (bench/serve.py).
GIL_SWITCH_SECONDS = 0.0003


def create_app_from_env() -> FastAPI:
    """For uvicorn's worker processes (``recpipe serve --workers N``): every setting, the
    service's options included (RECPIPE_SERVE_*), from the environment."""
    return create_app(load_settings())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Service = app.state.service
    before = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    await svc.run(svc.warm)  # model, catalog cache: not on the first request
    try:
        yield
    finally:
        svc.close()
        sys.setswitchinterval(before)


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """The service for ``settings`` (read from the environment if not given)."""
    from fastapi_offline import FastAPIOffline  # /docs and /redoc from the package: no CDN

    settings = settings or load_settings()
    app = FastAPIOffline(title="recpipe inference", version=__version__, lifespan=lifespan,
                         description="Recommendations from the two-tower model and pgvector.",
                         dependencies=[Depends(known_query_only)])
    app.state.settings, app.state.metrics = settings, Metrics()
    app.state.service = service or Service(settings)
    # outermost last: slashes collapsed, then metrics and the request log, the key, the size limit
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if settings.api_key:
        app.add_middleware(ApiKey, key=settings.api_key)
    document(app, keyed=bool(settings.api_key))
    app.state.metrics.install(app)
    if app.state.service.impressions is not None:
        app.state.metrics.watch_impressions(app.state.service.impressions)
    app.add_middleware(CollapseSlashes)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    mount_static(app)
    return app
