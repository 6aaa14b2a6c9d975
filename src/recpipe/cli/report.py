"""``recpipe report``: what shoppers did with the lists they were shown, per model and strategy."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from recpipe.adapters import Backends
from recpipe.cli.output import console, emit_json, table
from recpipe.config import load_settings
from recpipe.report.attribution import Line, Rate
from recpipe.report.pipeline import Report
from recpipe.report.pipeline import run as run_report


def report(
    refresh: Annotated[bool, typer.Option(
        "--refresh/--no-refresh", help="Read the recommendations sink's new hours first (`recpipe etl events`), "
                                       "so that the figures reach the last delivered event.")] = True,
    hourly: Annotated[bool, typer.Option("--hourly", help="One line per hour as well.")] = False,
    lake_url: Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                                 help="Lake directory or s3://bucket/prefix; overrides "
                                                      "RECPIPE_LAKE_URL.")] = None,
    recommendations_url: Annotated[str | None, typer.Option(
        "--recommendations-url", show_default=False,
        help="The stream's and the service's sink; overrides RECPIPE_RECOMMENDATIONS_URL.")] = None,
    prometheus_file: Annotated[str | None, typer.Option(
        "--prometheus-file", show_default=False, metavar="FILE",
        help="Also write the figures as Prometheus metrics to FILE (a node_exporter textfile collector's "
             "*.prom), replaced whole.")] = None,
    drift_margin: Annotated[float, typer.Option(
        "--drift-margin", min=0.0, max=0.99, help="Flag a model whose latest day's click-through is, with 95% "
                                                  "confidence, below its first day's lowered by this share.")] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document instead of tables.")] = False,
) -> None:
    """Click-through, add-to-cart and purchase rates of the lists shown, per source (stream or
    service), model version and strategy, each with its 95% interval.

    A list earns a click (a cart, a purchase) when an event names its recommendation_id on a
    product it held. The figures reach the newest event read into the lake: the lag is the
    delivery's buffer plus the time since the sink was last read (--refresh reads it now).

    Drift watch: a model whose click-through fell below its first day's by the margin is
    flagged, and so is a day whose products shoppers asked about moved away from the training
    data (a population stability index above 0.2).
    """
    settings = load_settings({"lake_url": lake_url, "recommendations_url": recommendations_url})
    if refresh:
        from recpipe.cli.etl import events_stage

        events_stage(settings, engine="duckdb", quiet=True)
    got = run_report(Backends(settings).lake(), margin=drift_margin)
    if prometheus_file:
        _write_metrics(got, prometheus_file)
    if as_json:
        emit_json(got.to_json())
        return
    show(got, hourly=hourly)


def _write_metrics(got: Report, path: str) -> None:
    """Atomically: the textfile collector never reads half a file."""
    import os
    from pathlib import Path

    from recpipe.errors import InputError
    from recpipe.report.prometheus import text

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(text(got))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}", hint="give a writable file") from None


def show(got: Report, *, hourly: bool = False, title: str = "online report",
         sources: tuple[str, ...] = ("service", "stream")) -> None:
    lines = [x for x in got.lines if x.source in sources]
    if not lines:
        console.print("online report: no impressions read yet (deliver the stream, then `recpipe etl events`)")
        return
    columns = ("source", "model", "strategy", "impressions", "click-through", "add-to-cart", "purchase")
    table(f"{title}: rates per list shown, 95% intervals", columns, [_row(x) for x in lines])
    if hourly:
        table("per hour", ("hour", *columns), [(x.hour, *_row(x)) for x in got.hourly])
    p = got.pointing
    rate = f"{p['attributed'] / p['pointing']:.1%}" if p["pointing"] else "-"
    console.print(f"attribution: {p['attributed']:,} of {p['pointing']:,} products picked from a list were in "
                  f"that list ({rate}); {p['unknown_list']:,} named a list not read yet")
    lag = got.lag_seconds()
    console.print(f"newest event {got.newest_event or '-'}"
                  + (f" ({lag:,.0f} s ago)" if lag is not None else "") + f"; sink last read {got.read_at or '-'}")
    _drift(got.drift)


def _drift(drift: dict[str, Any]) -> None:
    """The drift watch's flags (``report.drift``), one line each."""
    for x in drift.get("click_through") or []:
        if x["flagged"]:
            who = escape(f"{x['source']} {x['model_version']}" + (f" / {x['variant']}" if x["variant"] else ""))
            console.print(f"DRIFT: {who}: "
                          f"click-through {x['latest']['rate']:.1%} on {x['latest_day']} (95% up to "
                          f"{x['latest']['high']:.1%}) against {x['first']['rate']:.1%} on {x['first_day']}, "
                          f"more than {drift['margin']:.0%} lower")
    products = drift.get("products")
    if isinstance(products, dict):
        said = "DRIFT: " if products["flagged"] else ""
        console.print(f"{said}products asked about on {products['day']} against the training data: population "
                      f"stability index {products['psi']:.3f} ({products['events']:,} events; above "
                      f"{products['alert_above']} is a shift to act on)")


def _rate(r: Rate) -> str:
    return f"{r.rate:.2%} ({r.low:.2%}–{r.high:.2%})"


def _row(x: Line) -> tuple[object, ...]:
    model = x.model_version + (f" / {x.variant}" if x.variant else "")
    return (x.source, model, x.strategy, x.impressions, _rate(x.ctr), _rate(x.cart_rate), _rate(x.purchase_rate))
