"""The report as Prometheus metrics, in the text format a node_exporter's textfile collector
reads (``recpipe report --prometheus-file``): a batch job's way into Prometheus."""

from __future__ import annotations

from typing import Any

from recpipe.errors import require
from recpipe.report.pipeline import Report


def text(report: Report) -> bytes:
    """Lists shown, clicks, carts and purchases per source, model and strategy (totals of the
    lake), the attribution, and how fresh the figures are."""
    prometheus: Any = require("prometheus_client", "serve", "Prometheus output")
    registry = prometheus.CollectorRegistry()
    labels = ("source", "model_version", "strategy", "variant")
    gauges = {name: prometheus.Gauge(f"recpipe_online_{name}", what, labels, registry=registry) for name, what in (
        ("impressions", "Lists shown (every hour read into the lake)"),
        ("clicks", "Lists shown that earned a click"), ("carts", "Lists shown that earned an add-to-cart"),
        ("purchases", "Lists shown that earned a purchase"),
        ("click_through", "Clicks per list shown"))}
    for x in report.lines:
        key = (x.source, x.model_version, x.strategy, x.variant)
        for name in ("impressions", "clicks", "carts", "purchases"):
            gauges[name].labels(*key).set(getattr(x, name))
        gauges["click_through"].labels(*key).set(x.ctr.rate)
    pointing = prometheus.Gauge("recpipe_online_picks", "Products picked from a list, by whether that list held "
                                "them (attributed), or is not read yet (unknown_list)", ("outcome",), registry=registry)
    for outcome in ("attributed", "unknown_list"):
        pointing.labels(outcome).set(report.pointing[outcome])
    pointing.labels("not_in_list").set(report.pointing["pointing"] - report.pointing["attributed"]
                                       - report.pointing["unknown_list"])
    products = report.drift.get("products")
    if products:
        prometheus.Gauge("recpipe_online_products_psi", "Population stability index of the latest day's products "
                         "against the training data's (above 0.2: a shift to act on)", registry=registry).set(products["psi"])
    drifting = prometheus.Gauge("recpipe_online_ctr_drift", "1 when the latest day's click-through is below the first "
                                "day's by the report's margin", labels, registry=registry)
    for x in report.drift.get("click_through") or []:
        drifting.labels(x["source"], x["model_version"], "", x["variant"]).set(int(x["flagged"]))
    lag = report.lag_seconds()
    if lag is not None:
        prometheus.Gauge("recpipe_online_lag_seconds", "From the newest event read to this report",
                         registry=registry).set(lag)
    return bytes(prometheus.generate_latest(registry))
