"""``recpipe demo``: every stage that exists so far, on the embedded defaults."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from recpipe.cli.output import console, emit_json, table
from recpipe.config import Settings, load_settings
from recpipe.source.generate import PRESETS

T = TypeVar("T")


def demo(
    scale: Annotated[str, typer.Option(help=f"Shop size preset: {', '.join(PRESETS)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    serve: Annotated[bool, typer.Option("--serve", help="Then keep the service running for the page at / "
                                                         "until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the service with --serve.")] = 8000,
) -> None:
    """Run the whole pipeline end to end on the embedded defaults and summarise it.

    Stages: source (a synthetic shop in SQLite under RECPIPE_HOME), etl (the Parquet
    training dataset in the lake, DuckDB engine) and train (the two-tower model and its
    artifacts in <lake>/ml-artifacts) and vectors (the embeddings in the embedded PostgreSQL +
    pgvector, which keeps running for `recpipe vectors similar …` and `recpipe serve`;
    `recpipe vectors stop` stops it), serve (the inference service, started on a free local
    port for one request over HTTP, then stopped) and stream (500 simulated shoppers' events on
    the embedded stream, delivered with their recommendations into hour-partitioned objects);
    between those two, session (the same customer clicks three products: each click goes
    through the stream and the delivery into the session store, and their recommendations follow).
    The demo always rebuilds its data. At the end it prints the page's address; with --serve
    it keeps the service running there (on 127.0.0.1) until Ctrl-C.
    """
    from recpipe.cli.etl import etl_stage
    from recpipe.cli.source import source_stage
    from recpipe.cli.train import headline, print_evaluation, training_stage
    from recpipe.cli.vectors import vectors_stage

    settings = load_settings()
    stages = _Stages(quiet=as_json)
    started = time.perf_counter()
    _fresh_stream(settings)  # a new shop: the last demo's events are not its shoppers'
    source = stages.run("source", "a synthetic shop",
                        lambda: source_stage(settings, preset=scale, seed=seed, replace=True, quiet=as_json),
                        lambda s: f"{s.counts['ratings']:,} ratings from {s.counts['customers']:,} customers "
                                  f"in {s.source}")
    stages.run("etl", "the training dataset", lambda: etl_stage(settings, quiet=as_json, events=False)[0],
               lambda m: f"{m.rows:,} rows in {m.partitions:,} partitions ({m.engine}), "
                         f"{m.quarantine.rows:,} quarantined, at {m.location}")
    model = stages.run("train", "the two-tower model", lambda: training_stage(settings, quiet=as_json),
                       lambda m: f"model {m.model_version}: {headline(m)}, artifacts at {settings.artifacts_url}")
    if not as_json:
        print_evaluation(model)
    # the demo makes a new shop each time: its model serves whatever the previous shop's measured
    stages.run("vectors", "embeddings into PostgreSQL + pgvector",
               lambda: vectors_stage(settings, quiet=as_json, force=True),
               lambda v: f"{v.items:,} item and {v.users:,} user embeddings with HNSW indexes"
                         f"{f', {v.catalog:,} catalog products' if v.catalog is not None else ''} in {v.vectors}; "
                         f"serving it (promotion gate: {v.gate['reason'] if v.gate else '-'})")
    served = stages.run("serve", "recommendations over HTTP", lambda: ask_the_service(settings),
                        lambda r: f"GET /recommendations/{r['customer_number']} → "
                                  f"{', '.join(i['id'] for i in r['items'])} (model {r['model_version']})")
    if not as_json:
        table(f"recommendations for customer {served['customer_number']} (strategy: {served['strategy']}), "
              f"served over HTTP", ("product", "product line", "score"),
              [(i["id"], i["product_line"] or "", f"{i['score']:.3f}") for i in served["items"]])
    browsed = stages.run("session", "one shopper browses: their recommendations follow",
                         lambda: browse_as_a_shopper(settings, served["customer_number"]),
                         lambda r: f"customer {r['customer_number']} clicked {len(r['steps']) - 1} products of "
                                   f"{r['line']}; each click changed /recommendations within "
                                   f"{max(s['ms'] for s in r['steps'][1:]):,.0f} ms (stream → delivery → session store)")
    if not as_json:
        _show_browsing(browsed)
    streamed = stages.run("stream", "shoppers react to their lists; events delivered with recommendations",
                          lambda: stream_some(settings, quiet=as_json),
                          lambda r: f"{r['produced']:,} events → {r['counts']['ok']:,} enriched records in "
                                    f"{r['objects']} object(s) under {r['sink']}/YYYY/MM/dd/HH/")
    if not as_json:
        _show_enriched(streamed)
    online = stages.run("report", "what the lists shown earned", lambda: online_report(settings),
                        lambda r: _online_summary(r))
    if not as_json:
        from recpipe.cli.report import show

        show(online, sources=("service",), title="online report (`recpipe report`)")
    total = round(time.perf_counter() - started, 2)
    if as_json:
        emit_json({"home": str(settings.home), "stages": stages.done, "seconds": total,
                   "rmse_floor": source.rmse_floor, "model_version": model.model_version,
                   "metrics": model.metrics, "stream": {k: v for k, v in streamed.items() if k != "example"},
                   "session": browsed, "report": online.to_json()})
        return
    table(f"recpipe demo: done in {total:.1f} s (home {settings.home})", ("stage", "seconds", "result"),
          [(s["stage"], f"{s['seconds']:.2f}", s["result"]) for s in stages.done])
    console.print(f"try: curl 'localhost:{port}/recommendations/{served['customer_number']}?{ASKED}'"
                  " (OpenAPI page at /docs) · recpipe vectors similar <productCode> -k 5 · recpipe stream produce "
                  "--count 1000, then recpipe stream deliver --until-idle 1 · recpipe stream tail · "
                  "recpipe models list · recpipe vectors stop (stops the embedded PostgreSQL)", highlight=False)
    page = f"http://127.0.0.1:{port}/#/customers/{served['customer_number']}"
    if not serve:
        console.print(f"the page: run `recpipe serve --port {port}` (or `recpipe demo --serve`), then open {page}",
                      highlight=False)
        return
    from recpipe.cli.serve import serve as run_service

    console.print(f"the page: open {page} (Ctrl-C stops the service)", highlight=False)
    run_service(host="127.0.0.1", port=port)


# the rules of the list the demo shows, and of the curl it suggests; recent= (none): the stored
# answer, whatever the session store learnt since from the demo's own shoppers
ASKED = "k=5&max_per_line=2&recent="


class _Stages:
    """Each stage: a numbered heading, its work timed, one line for the summary."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.done: list[dict[str, Any]] = []

    def run(self, name: str, title: str, work: Callable[[], T], summary: Callable[[T], str]) -> T:
        if not self.quiet:
            console.rule(f"[bold]{len(self.done) + 1}. {name}[/]: {title}")
        t0 = time.perf_counter()
        result = work()
        self.done.append({"stage": name, "seconds": round(time.perf_counter() - t0, 2), "result": summary(result)})
        if not self.quiet:  # what it did, where its output is: a section is never empty, piped or not
            console.print(self.done[-1]["result"], highlight=False, markup=False)
        return result


def stream_some(settings: Settings, *, quiet: bool) -> dict[str, Any]:
    """Simulated shoppers onto the embedded stream, then one delivery until the stream is quiet."""

    from recpipe.adapters import Backends
    from recpipe.cli.stream import deliver_stage, produce_stage
    from recpipe.streaming.deliver import DeliveryOptions
    from recpipe.streaming.pipeline import tail

    _fresh_stream(settings)
    # shoppers shown the service's lists (half the model's, half the most bought) react to them
    produced = produce_stage(settings, rate=5_000, count=1_000, duration=None, quiet=quiet, closed_loop=True)
    # the default delivery name: `recpipe stream deliver` goes on from where the demo stopped
    result = deliver_stage(settings, DeliveryOptions(until_idle=0.5), quiet=quiet)
    sink = Backends(settings).recommendations()
    objects = [f for f in sink.list_files() if f[:4].isdigit()]
    return {"produced": produced.events, "counts": result.counts, "sink": sink.url, "objects": len(objects),
            "latest_object": objects[-1] if objects else None, "example": next(iter(tail(sink, 1)), None),
            "arms": produced.arms}


def online_report(settings: Settings) -> Any:
    """`recpipe etl events`, then `recpipe report`: the lists shown, and what they earned."""
    from recpipe.adapters import Backends
    from recpipe.cli.etl import events_stage
    from recpipe.report.pipeline import run as run_report

    events_stage(settings, engine="duckdb", quiet=True)
    return run_report(Backends(settings).lake())


def _online_summary(report: Any) -> str:
    from recpipe.streaming.closed_loop import lists_by_arm

    shown = "; ".join(f"{name}: {c:,} clicks on {n:,} lists ({c / n:.1%})"
                      for name, (n, c) in lists_by_arm(report.lines).items() if n)
    p = report.pointing
    return (f"{shown or 'no lists shown'}; {p['attributed']:,} of {p['pointing']:,} picks from a list attributed "
            f"to it")


def _fresh_stream(settings: Settings) -> None:
    """The demo rebuilds its own data: its stream and sink under RECPIPE_HOME start empty."""
    import shutil
    from pathlib import Path

    from recpipe.contracts.activity import EVENTS, EVENTS_QUARANTINE, IMPRESSIONS

    lake = [str(Path(settings.lake_url) / name) for name in (EVENTS, IMPRESSIONS, EVENTS_QUARANTINE)]
    for url in (settings.stream_url, settings.recommendations_url, *lake):
        path = Path(url)
        if "://" not in url and path.resolve().is_relative_to(settings.home):
            shutil.rmtree(path, ignore_errors=True)


def _show_enriched(streamed: dict[str, Any]) -> None:
    r = streamed["example"]
    if r is None:
        return
    who = f"customer {r['customer_number']}" if r["customer_number"] is not None else "a visitor"
    browsed = ", ".join(b["product_code"] + (" (in cart)" if b["in_shopping_cart"] else "") for b in r["browse_history"])
    similar = r["similar_items"]
    table(f"one enriched record, session {r['session_id']} ({who}, strategy {r['strategy']}); browsed: {browsed}",
          ("recommended", "score", f"similar to {similar['product_code'] or '-'}", "score"),
          [(a["id"], f"{a['score']:.3f}", b["id"] if b else "", f"{b['score']:.3f}" if b else "")
           for a, b in zip(r["recommended_items"][:5], (similar["similar_items"] + [None] * 5)[:5], strict=False)])
    console.print(f"latest object: {streamed['latest_object']}", highlight=False)


def browse_as_a_shopper(settings: Settings, customer: int, clicks: int = 3) -> dict[str, Any]:
    """The customer clicks the most bought products of a product line their list does not
    lead with, one event per click on the stream (their session's history so far); after each,
    the delivery runs and the service is asked again: what the page would show them."""
    import datetime as dt
    import json
    import urllib.request

    from recpipe.adapters import Backends
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service
    from recpipe.cli.stream import deliver_stage
    from recpipe.contracts.events import BrowsedProduct, Event
    from recpipe.streaming.deliver import DeliveryOptions

    _fresh_stream(settings)
    service = Service(settings)
    with service.queries() as q:
        popular = q.popularity()
    stream = Backends(settings).stream()
    steps: list[dict[str, Any]] = []
    with serving(create_app(settings, service=service)) as url:
        def ask() -> dict[str, Any]:
            with urllib.request.urlopen(f"{url}/recommendations/{customer}?k=5", timeout=30) as answer:  # noqa: S310
                return dict(json.loads(answer.read()))

        before = ask()
        leading = {i["product_line"] for i in before["items"][:2]}
        line = next((p[1] for p in popular if p[1] not in leading and (p[2] or 0) > 0), popular[0][1])
        picks = [p[0] for p in popular if p[1] == line and (p[2] or 0) > 0][:clicks]
        steps.append({"clicked": None, "ms": 0.0, **before})
        history: list[BrowsedProduct] = []
        for code in picks:
            history.append(BrowsedProduct(product_code=code, quantity=1, in_shopping_cart=False))
            event = Event(session_id=f"demo-{customer}", customer_number=customer,
                          event_time=dt.datetime.now(dt.UTC), browse_history=list(history))
            t0 = time.perf_counter()
            stream.put([(event.session_id, event.to_bytes())])
            deliver_stage(settings, DeliveryOptions(buffer_seconds=0.0, until_idle=0.2), quiet=True)
            steps.append({"clicked": code, "ms": round(1000 * (time.perf_counter() - t0), 1), **ask()})
    return {"customer_number": customer, "line": line, "steps": steps}


def _show_browsing(browsed: dict[str, Any]) -> None:
    rows = []
    for step in browsed["steps"]:
        clicked = "(before)" if step["clicked"] is None else step["clicked"]
        rows.append((clicked, step["strategy"], ", ".join(f"{i['id']} ({i['product_line']})" for i in step["items"]),
                     "" if step["clicked"] is None else f"{step['ms']:,.0f}"))
    table(f"customer {browsed['customer_number']} browses {browsed['line']}: GET /recommendations after each click",
          ("clicked", "strategy", "recommended (product line)", "ms to the answer"), rows)


def ask_the_service(settings: Settings) -> dict[str, Any]:
    """Start the inference service on a free local port, ask it for one customer's
    recommendations (the first customer with an embedding) over real HTTP, stop it."""
    import json
    import urllib.request

    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    service = Service(settings)
    with service.queries() as q:
        customer = q.first_stored_customer()
    with serving(create_app(settings, service=service)) as url, \
            urllib.request.urlopen(f"{url}/recommendations/{customer}?{ASKED}",  # noqa: S310 (ours)
                                   timeout=30) as answer:
        return json.loads(answer.read())
