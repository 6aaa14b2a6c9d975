"""Prometheus metrics: requests by route, method and status; latency histograms by route; and
the request log (logger ``recpipe.requests``, INFO: method, path, status, milliseconds and the
recommendation_id, never a header or a body).

A plain ASGI middleware (no per-request task or body copying). With several uvicorn worker
processes, ``PROMETHEUS_MULTIPROC_DIR`` makes /metrics add up every worker's counts.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger("recpipe.requests")

BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.started = time.monotonic()
        self.registry = CollectorRegistry()  # one per app: no clashes between apps in a process
        self.requests = Counter("recpipe_http_requests_total", "HTTP requests", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("recpipe_http_request_duration_seconds", "HTTP request latency",
                                 ("method", "route"), buckets=BUCKETS, registry=self.registry)

    def watch_impressions(self, log: Any) -> None:
        """Export the service's impression log (``api.impressions``): lists written, lost, pending."""
        self.registry.register(_ImpressionLog(log))

    def install(self, app: Any) -> None:
        app.add_middleware(_Measure, metrics=self, routes=app.router.routes)

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def summary(self) -> list[dict[str, Any]]:
        """Per route and method: requests, 4xx and 5xx answers, and the latency quantiles the
        histogram bounds (p50, p99: the upper edge of the bucket they fall in, in ms)."""
        counts: dict[tuple[str, str], dict[str, Any]] = {}
        buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for family in self.registry.collect():
            for s in family.samples:
                key = (s.labels.get("method", ""), s.labels.get("route", ""))
                if s.name == "recpipe_http_requests_total":
                    row = counts.setdefault(key, {"method": key[0], "route": key[1], "requests": 0, "4xx": 0, "5xx": 0})
                    row["requests"] += int(s.value)
                    status = s.labels["status"][:1]
                    if status in "45":
                        row[f"{status}xx"] += int(s.value)
                elif s.name == "recpipe_http_request_duration_seconds_bucket":
                    buckets.setdefault(key, []).append((float(s.labels["le"]), s.value))
        for key, row in counts.items():
            edges = sorted(buckets.get(key, []))
            total = edges[-1][1] if edges else 0
            for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
                edge = next((le for le, n in edges if total and n >= q * total), None)
                row[name] = None if edge is None or edge == float("inf") else edge * 1000
        return sorted(counts.values(), key=lambda r: -r["requests"])

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ImpressionLog:
    """A collector read at each scrape (the log keeps the counts; nothing runs per request)."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield CounterMetricFamily("recpipe_impressions_written", "Lists shown by /recommendations and written to "
                                  "the impression log", value=self.log.written)
        yield CounterMetricFamily("recpipe_impressions_lost", "Lists the impression log dropped (the sink "
                                  "failed for too long)", value=self.log.lost)
        yield CounterMetricFamily("recpipe_impression_log_write_failures", "Failed writes of the impression log",
                                  value=self.log.failures)
        yield GaugeMetricFamily("recpipe_impressions_pending", "Lists shown, not yet written",
                                value=self.log.unwritten())


def _matching(routes: list[Any], scope: dict[str, Any], full: Any) -> Any:
    """The route that answers ``scope``, looking inside included routers (FastAPI keeps each
    as one entry of the app's routes)."""
    for route in routes:
        if route.matches(scope)[0] == full:
            inner = getattr(route, "original_router", None)
            return route if inner is None else _matching(inner.routes, scope, full) or route
    return None


class _Measure:
    def __init__(self, app: Any, metrics: Metrics, routes: list[Any]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    def _route(self, scope: dict[str, Any], before: dict[str, Any]) -> str:
        """The route's template; answers given before routing (413, 401) and mounts (the page's
        static files: routing changes their scope's root_path) are matched on the scope as it came."""
        route = scope.get("route")
        if route is None:
            from starlette.routing import Match

            route = _matching(self.routes, before, Match.FULL)
        return getattr(route, "path", "unmatched")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        before = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", ""),
                  "method": scope.get("method", "")}
        status = [500]
        headers: list[Any] = []

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers[:] = message.get("headers") or ()
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            route, method = self._route(scope, before), scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            if log.isEnabledFor(logging.INFO):  # the headers are read only for the log
                rec_id = dict(headers).get(b"x-recommendation-id", b"-").decode("latin-1")
                log.info("%s %s %d %.1fms recommendation_id=%s", method, scope["path"], status[0], seconds * 1000,
                         rec_id)
