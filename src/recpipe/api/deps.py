"""What the routes are given: the service, the settings and the metrics an app was built
with, kept on ``app.state`` by ``create_app`` and handed to each endpoint as a typed
dependency (``ServiceDep``, …). The dependencies are coroutines: no thread per request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from recpipe.api.metrics import Metrics
from recpipe.api.schema import ERRORS
from recpipe.api.service import Service
from recpipe.config import Settings


async def _service(request: Request) -> Service:
    return request.app.state.service


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ServiceDep = Annotated[Service, Depends(_service)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give, declared in the OpenAPI document (401 is left out of
    the document of a service that runs without a key: ``auth.document``)."""
    return {code: ERRORS[code] for code in (401, 413, 422, *statuses)}
