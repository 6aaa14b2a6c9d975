"""The page at ``/`` (static files in ``recpipe.api.page``) and what only it reads (tag
``console``): the latest enriched events, the pipeline's state, a 2-D map of the item
embeddings. Recommendations come from the public ``/recommendations`` itself, so the page
shows what the API answers."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from recpipe.api.deps import MetricsDep, ServiceDep, SettingsDep, responses
from recpipe.api.page import status
from recpipe.vectors import shop
from recpipe.vectors.status import status as vectors_status

router = APIRouter(tags=["console"])
STATIC = resources.files("recpipe.api.page") / "static"


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


def mount_static(app: FastAPI) -> None:
    """The page's own files, at /static (they hold no data)."""
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")


@router.get("/", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/live", response_model=Live, responses=responses())
async def live(svc: ServiceDep, settings: SettingsDep,
               n: Annotated[int, Query(ge=1, le=100, description="How many records.")] = 20) -> Any:
    """The latest enriched events the streaming path delivered (RECPIPE_RECOMMENDATIONS_URL)."""
    return await svc.run(status.section, lambda: status.live(settings, n))


@router.get("/pipeline", responses=responses())
async def pipeline(svc: ServiceDep, settings: SettingsDep, metrics: MetricsDep) -> dict[str, Any]:
    """Each stage's state: the training set, the model, the vector database, the stream, what
    the lists shown earned (`recpipe report`) and this service's traffic; a stage that cannot be
    read says why."""
    return {"etl": await svc.run(status.section, lambda: status.etl(settings)),
            "model": await svc.run(status.section, lambda: status.model(settings)),
            "vectors": await svc.run(status.section, lambda: svc.read(vectors_status)),
            "stream": await svc.run(status.section, lambda: status.stream(settings)),
            "online": await svc.run(status.section, lambda: status.online(settings)),
            "service": {"ok": True, "routes": metrics.summary(), "uptime_seconds": metrics.uptime()}}


@router.get("/pipeline/item_map", response_model=ItemMap, responses=responses(503))
async def item_map(svc: ServiceDep,
                   limit: Annotated[int, Query(ge=3, le=20_000, description="Items at most.")] = 5000) -> Any:
    """The item embeddings on their two main axes (PCA), for a map coloured by product line."""
    return await svc.run(svc.read, shop.item_map, limit)
