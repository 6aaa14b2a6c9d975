"""``recpipe stream``: simulate shoppers onto the stream, deliver it enriched, and watch it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from recpipe.cli.output import bars, console, emit_json, mapping, table
from recpipe.config import Settings, load_settings

app = typer.Typer(help="The streaming path: events → stream → enriched records in the sink, by hour.",
                  no_args_is_help=True)

StreamUrl = Annotated[str | None, typer.Option("--stream-url", show_default=False,
                                               help="A directory (embedded log) or kinesis://name; "
                                                    "overrides RECPIPE_STREAM_URL.")]
SinkUrl = Annotated[str | None, typer.Option("--recommendations-url", show_default=False,
                                             help="A directory or s3://bucket/prefix; overrides "
                                                  "RECPIPE_RECOMMENDATIONS_URL.")]
Name = Annotated[str, typer.Option("--name", help="The delivery's name: object names and its saved positions.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of tables.")]


def produce_stage(settings: Settings, *, rate: float, count: int | None, duration: float | None,
                  unknown: float = 0.15, seed: int = 0, quiet: bool = False, closed_loop: bool = False,
                  service_url: str | None = None, popular_share: float | None = None, k: int = 10) -> Any:
    """``streaming.produce.run`` with the settings and a progress bar (the CLI and the demo);
    ``closed_loop``: the shoppers are shown the service's lists first (``streaming.closed_loop``),
    over HTTP at ``service_url`` or in process; the result then has ``arms``. ``popular_share``
    None: half the sessions, or none while an experiment runs (the service assigns them)."""
    from recpipe.adapters import Backends
    from recpipe.source.load import read_sidecar, sidecar_path
    from recpipe.streaming.produce import Shoppers, run

    db = Backends(settings).source()
    shoppers = Shoppers.from_source(db, read_sidecar(sidecar_path(settings.home, db)), unknown=unknown, seed=seed)
    service = None
    simulation: Any = shoppers
    if closed_loop:
        from recpipe.streaming.closed_loop import ClosedLoop, HttpStorefront

        if service_url:
            storefront: Any = HttpStorefront(service_url, api_key=settings.api_key)
        else:
            from recpipe.api.service import Service
            from recpipe.api.storefront import ServiceStorefront

            service = Service(settings)
            storefront = ServiceStorefront(service)
        if popular_share is None:
            from recpipe.vectors import experiments
            from recpipe.vectors.connect import connect

            with connect(Backends(settings).vectors()) as conn:
                popular_share = 0.0 if experiments.running(conn) is not None else 0.5
        simulation = ClosedLoop(shoppers, storefront, k=k, popular_share=popular_share)
    try:
        with bars(quiet=quiet, transient=True) as progress:
            result = run(Backends(settings).stream(), simulation, rate=rate, count=count, duration=duration,
                         progress=progress)
    finally:
        if service is not None:
            service.close()  # its impression log is written
    if closed_loop:
        result.arms = simulation.summary()
    return result


def deliver_stage(settings: Settings, options: Any, *, quiet: bool = False) -> Any:
    """``streaming.pipeline.run`` with the in-process transformation (the CLI and the demo)."""
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import run
    from recpipe.streaming.transform import enricher_from_settings, transform_with_reasons

    enricher = enricher_from_settings(settings)
    with bars(quiet=quiet, transient=True) as progress:
        progress.start("delivered")
        return run(Backends(settings).stream(), Backends(settings).recommendations(),
                   lambda event: transform_with_reasons(event, enricher), options, progress)


@app.command("produce")
def produce(
    rate: Annotated[float | None, typer.Option(min=0.001, show_default=False,
                                               help="Events per second [simulated: 1000; --from: as fast as "
                                                    "the stream takes them].")] = None,
    count: Annotated[int | None, typer.Option(min=1, show_default=False, help="Stop after this many events.")] = None,
    duration: Annotated[float | None, typer.Option(min=0.001, show_default=False,
                                                   help="Stop after this many seconds.")] = None,
    from_file: Annotated[str | None, typer.Option("--from", show_default=False, metavar="FILE",
                                                  help="Replay these events instead of simulating shoppers: "
                                                       "NDJSON, one event per line (`-`: standard input). Bad "
                                                       "lines are reported by number; nothing is put for them.")
                         ] = None,
    unknown: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of sessions from visitors the shop "
                                                                  "does not know.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Random seed of the shoppers.")] = 0,
    closed_loop: Annotated[bool, typer.Option(
        "--closed-loop", help="Show each shopper the service's recommendations before each click, as a shop "
                              "page would; they pick by the shop's ground truth, and a pick from the list names "
                              "its recommendation_id (needs a synthetic shop and a loaded model).")] = False,
    service_url: Annotated[str | None, typer.Option(
        "--service-url", show_default=False, help="With --closed-loop: ask this running `recpipe serve` "
                                                  "(default: the service's code in process, logging to "
                                                  "RECPIPE_RECOMMENDATIONS_URL).")] = None,
    popular_share: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, show_default=False,
        help="With --closed-loop: the share of sessions shown the most bought products instead of the model's "
             "(the control) [0.5; 0 while an experiment runs: the service assigns the shoppers].")] = None,
    stream_url: StreamUrl = None,
    source_url: Annotated[str | None, typer.Option("--source-url", show_default=False,
                                                   help="Where the customers and products come from; "
                                                        "overrides RECPIPE_SOURCE_URL.")] = None,
    as_json: Json = False,
) -> None:
    """Simulate shoppers from the source database: events with real customers (and unknown
    visitors) browsing real products, partitioned by session. Give --count or --duration, or
    replay real activity with --from FILE. With --closed-loop they react to what the service
    recommends (see docs/online.md)."""
    if from_file is not None:
        if count is not None or duration is not None:
            raise typer.BadParameter("--from replays every event of the file: leave out --count and --duration")
        _replay(from_file, rate, stream_url, as_json)
        return
    if (count is None) == (duration is None):
        raise typer.BadParameter("give exactly one of --count or --duration (or --from FILE)")
    if service_url is not None and not closed_loop:
        raise typer.BadParameter("--service-url is for --closed-loop")
    settings = load_settings({"stream_url": stream_url, "source_url": source_url})
    result = produce_stage(settings, rate=rate or (100.0 if closed_loop else 1000.0), count=count, duration=duration,
                           unknown=unknown, seed=seed, quiet=as_json, closed_loop=closed_loop, service_url=service_url,
                           popular_share=popular_share)
    if as_json:
        emit_json(result.to_json())
        return
    console.print(f"put {result.events:,} events from {result.sessions:,} sessions in {result.seconds:.1f} s "
                  f"({result.rate:,.0f}/s; browsing by {result.preferences}) onto {result.stream}", highlight=False)
    if result.arms:
        table("what the lists earned (counted by the simulation; `recpipe report` counts it from the lake)",
              ("shown", "lists", "clicks", "click-through (95%)", "carts", "purchases", "a perfect list's"),
              [(name, a["impressions"], a["clicks"], f"{a['ctr']:.1%} ({a['ctr_low']:.1%}–{a['ctr_high']:.1%})",
                a["carts"], a["purchases"], f"{a['ceiling_ctr']:.1%}") for name, a in result.arms.items()])


def _replay(path: str, rate: float | None, stream_url: str | None, as_json: bool) -> None:
    import sys

    from recpipe.adapters import Backends
    from recpipe.errors import InputError
    from recpipe.streaming.produce import replay

    settings = load_settings({"stream_url": stream_url})
    try:
        lines = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", hint="give an NDJSON file of events, or - for stdin") \
            from None
    try:
        with bars(quiet=as_json, transient=True) as progress:
            result = replay(Backends(settings).stream(), lines, source="stdin" if path == "-" else path, rate=rate,
                            progress=progress)
    finally:
        if lines is not sys.stdin.buffer:
            lines.close()
    if as_json:
        emit_json(result.to_json())
        return
    for b in result.bad[:20]:
        console.print(f"line {b.line}: {escape(b.problem)}", highlight=False, style="yellow")
    if len(result.bad) > 20:
        console.print(f"… and {len(result.bad) - 20:,} more bad lines (--json lists them all)", highlight=False)
    skipped = f"; {len(result.bad):,} bad lines set aside (nothing put for them)" if result.bad else ""
    console.print(f"put {result.events:,} events from {escape(result.source)} in {result.seconds:.1f} s "
                  f"({result.rate:,.0f}/s) onto {escape(result.stream)}{skipped}", highlight=False)


@app.command("deliver")
def deliver(
    buffer_mb: Annotated[float, typer.Option("--buffer-mb", min=0.001, max=3.0,
                                             help="Firehose's buffer size hint before the transformation.")] = 0.25,
    buffer_seconds: Annotated[float, typer.Option(min=0.0, max=900.0, help="Firehose's buffer interval hint.")] = 1.0,
    until_idle: Annotated[float | None, typer.Option(min=0.0, show_default=False,
                                                     help="Exit once no record has arrived for this many "
                                                          "seconds (default: run until stopped).")] = None,
    retry_seconds: Annotated[float, typer.Option(min=0.0, help="Keep retrying a failing transformation this long "
                                                               "before its records go to processing-failed/.")] = 60.0,
    name: Name = "recpipe",
    reset: Annotated[bool, typer.Option("--reset", help="Give up saved positions that cannot be used (a damaged "
                                                        "state file, a stream made anew) and read the stream "
                                                        "from its oldest record.")] = False,
    stream_url: StreamUrl = None,
    recommendations_url: SinkUrl = None,
    as_json: Json = False,
) -> None:
    """Firehose, locally: read the stream, buffer, add recommendations to each event (the
    transformation Lambda, in-process), write newline-delimited JSON under YYYY/MM/dd/HH/ and
    failures under processing-failed/. Exactly once across crashes; Ctrl-C delivers what is
    buffered, saves the positions and exits."""
    from recpipe.streaming.deliver import DeliveryOptions

    settings = load_settings({"stream_url": stream_url, "recommendations_url": recommendations_url})
    options = DeliveryOptions(name=name, buffer_bytes=int(buffer_mb * 1_000_000), buffer_seconds=buffer_seconds,
                              until_idle=until_idle, retry_seconds=retry_seconds, reset=reset)
    options.check()
    result = deliver_stage(settings, options, quiet=as_json)
    if as_json:
        emit_json(result.to_json())
        return
    c = result.counts
    console.print(f"delivered {result.delivered:,} records in {result.seconds:.1f} s into {result.sink}; so far: "
                  f"{c['ok']:,} ok, {c['failed']:,} failed, {c['dropped']:,} dropped in {c['objects']:,} objects",
                  highlight=False)


@app.command("status")
def status(name: Name = "recpipe", stream_url: StreamUrl = None, recommendations_url: SinkUrl = None,
           as_json: Json = False) -> None:
    """Per shard: the delivered position, the stream's head and the lag; what was written."""
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import status as read_status

    settings = load_settings({"stream_url": stream_url, "recommendations_url": recommendations_url})
    doc = read_status(Backends(settings).stream(), Backends(settings).recommendations(), name)
    if as_json:
        emit_json(doc)
        return
    if doc["stream_replaced"]:
        console.print(f"the stream was made anew since delivery {doc['delivery']!r} last read it: its saved "
                      "positions do not apply (`recpipe stream deliver --reset` reads it from the start)",
                      highlight=False, markup=False)
    table(f"stream {doc['stream']} → {doc['sink']} (delivery {doc['delivery']})",
          ("shard", "delivered up to", "head", "lag", "finished"),
          [(s["shard"], s["position"], s["head"], s["lag"], s["finished"]) for s in doc["shards"]])
    mapping("delivered so far", {**doc["counts"], "objects (ok)": doc["objects"],
                                 "objects (processing-failed)": doc["failed_objects"],
                                 "a buffer waits to be finished": doc["pending"]})


@app.command("tail")
def tail(n: Annotated[int, typer.Option("-n", min=1, max=1000, help="How many records.")] = 5,
         recommendations_url: SinkUrl = None, as_json: Json = False) -> None:
    """The latest enriched records."""
    from recpipe.adapters import Backends
    from recpipe.streaming.pipeline import tail as read_tail

    settings = load_settings({"recommendations_url": recommendations_url})
    records = read_tail(Backends(settings).recommendations(), n)
    if as_json:
        emit_json(records)
        return
    if not records:
        console.print("nothing delivered yet: `recpipe stream produce`, then `recpipe stream deliver`")
        return
    table(f"the latest {len(records)} enriched records", ("session", "customer", "browsed", "recommended", "similar to"),
          [(r["session_id"], str(r["customer_number"]) if r["customer_number"] is not None else "(visitor)",
            ", ".join(b["product_code"] for b in r["browse_history"][-3:]),
            ", ".join(i["id"] for i in r["recommended_items"][:5]),
            f"{r['similar_items']['product_code']}: " + ", ".join(i["id"] for i in r["similar_items"]["similar_items"][:3])
            if r["similar_items"]["product_code"] else "")
           for r in records])
