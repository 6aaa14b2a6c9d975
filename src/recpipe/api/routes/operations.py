"""/health, /ready and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from recpipe.api.deps import MetricsDep, ServiceDep, responses
from recpipe.api.schema import Ready, public
from recpipe.errors import RecpipeError, said

router = APIRouter(tags=["operations"])
NOT_READY: dict[int | str, dict[str, Any]] = {503: {"model": Ready, "description": "Not ready (yet): retry after a while"}}


@router.get("/health", responses=responses())
async def health() -> dict[str, str]:
    """The process answers (nothing else is checked)."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses=responses() | NOT_READY)
async def ready(svc: ServiceDep) -> JSONResponse:
    """200 once the vector database answers and holds a load; 503 otherwise. The served
    model is the one whose embeddings are loaded; ``published_model_version`` is the
    artifacts' latest, served after the next ``recpipe vectors load``."""
    try:
        model, published = await svc.run(svc.ready)
    except Exception as exc:
        error = exc.message if isinstance(exc, RecpipeError) else said(exc)
        return JSONResponse({"ready": False, "error": public(error)}, status_code=503, headers={"Retry-After": "1"})
    body: dict[str, Any] = {"ready": True, "model_version": model.version, "published_model_version": published}
    if published is not None and published != model.version:
        body["waiting"] = (f"model {published} is published but not loaded: run `recpipe vectors load` "
                           f"to serve it (model {model.version} is served until then)")
    return JSONResponse(body)


@router.get("/metrics", response_class=PlainTextResponse, responses=responses())
def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus text format: request counts and latency histograms per route."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
