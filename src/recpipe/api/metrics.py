"""Prometheus metrics: requests by route, method and status; latency histograms by route."""

from __future__ import annotations

import time
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()  # one per app: no clashes between apps in a process
        self.requests = Counter("recpipe_http_requests_total", "HTTP requests", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("recpipe_http_request_duration_seconds", "HTTP request latency",
                                 ("method", "route"), buckets=BUCKETS, registry=self.registry)

    def install(self, app: Any) -> None:
        @app.middleware("http")
        async def measure(request: Any, call_next: Any) -> Any:
            start = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                route = request.scope.get("route")
                path = getattr(route, "path", "unmatched")
                self.requests.labels(request.method, path, str(status)).inc()
                self.latency.labels(request.method, path).observe(time.perf_counter() - start)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
