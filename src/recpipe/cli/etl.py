"""``recpipe etl``: build the training dataset in the lake, and show what was published."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recpipe.adapters import Backends
from recpipe.cli.output import bars, console, emit_json, mapping, table
from recpipe.config import Settings, load_settings
from recpipe.contracts.activity import EventsManifest
from recpipe.contracts.dataset import ENGINES, DatasetManifest
from recpipe.etl.lines import hour_of
from recpipe.etl.online import read_manifest
from recpipe.etl.online import run as run_online
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.load import read_sidecar, sidecar_path

app = typer.Typer(help="Build the Parquet training dataset from the source (DuckDB or Spark).",
                  no_args_is_help=True)

SourceUrl = Annotated[str | None, typer.Option("--source-url", show_default=False,
                                               help="Source database URL; overrides RECPIPE_SOURCE_URL.")]
LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake directory or s3://bucket/prefix; overrides RECPIPE_LAKE_URL.")]
RecommendationsUrl = Annotated[str | None, typer.Option(
    "--recommendations-url", show_default=False,
    help="Where the stream delivered and the service logged: a directory or s3://bucket/prefix; "
         "overrides RECPIPE_RECOMMENDATIONS_URL.")]
Json = Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")]


def etl_stage(settings: Settings, *, engine: str | None = None, max_quarantine_fraction: float = 0.05,
              quiet: bool = False, events: bool = True, layout: str = "partitioned"
              ) -> tuple[DatasetManifest, EventsManifest | None]:
    """``etl.pipeline.run`` and (``events``) ``etl.online.run`` with the settings and progress
    bars (the CLI and the demo)."""
    db = Backends(settings).source()
    lake = Backends(settings).lake()
    engine = engine or settings.engine
    generator = read_sidecar(sidecar_path(settings.home, db))
    spark = _spark(settings, engine)
    with bars(quiet=quiet) as progress:
        manifest = run_etl(db, lake, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                           generator=generator, spark=spark, layout=layout, progress=progress)
    return manifest, events_stage(settings, engine=engine, quiet=quiet, spark=spark) if events else None


def events_stage(settings: Settings, *, engine: str | None = None, quiet: bool = False,
                 spark: Any = None) -> EventsManifest | None:
    """``etl.online.run``: the recommendations sink's new hours into the lake (None: the sink
    has nothing yet)."""
    engine = engine or settings.engine
    sink = Backends(settings).recommendations()
    if not any(hour_of(key) for key in sink.list_files()):  # nothing to read: no Spark, no lock in the lake
        return read_manifest(Backends(settings).lake())
    with bars(quiet=quiet, transient=True) as progress:
        return run_online(sink, Backends(settings).lake(), engine=engine,
                          spark=spark or _spark(settings, engine), progress=progress)


def _spark(settings: Settings, engine: str) -> Any:
    if engine != "spark":
        return None
    from recpipe.etl.spark_engine import local_session

    return local_session(master=settings.spark_master, driver_memory=settings.spark_driver_memory,
                         jars=settings.spark_jars)


@app.command("run")
def run(
    engine: Annotated[str | None, typer.Option(
        help=f"ETL engine: {' or '.join(ENGINES)} (default: RECPIPE_ENGINE, else duckdb). "
             "spark runs the AWS Glue job's code on a local Spark.", show_default=False)] = None,
    max_quarantine_fraction: Annotated[float, typer.Option(
        help="Fail, leaving the published dataset as it was, if more than this fraction of "
             "ratings break the contract.")] = 0.05,
    events: Annotated[bool, typer.Option(
        "--events/--no-events", help="Also read the recommendations sink's new hours into the lake's "
                                     "events and impressions (see `recpipe etl events`).")] = True,
    layout: Annotated[str, typer.Option(
        help="partitioned: the contract's customerNumber=<n>/ folders, one file per customer. compact: "
             "files of about a million ratings, whole customers each, customerNumber a column "
             "(big shops: far fewer files to write, list and read; docs/scale.md).")] = "partitioned",
    source_url: SourceUrl = None,
    lake_url: LakeUrl = None,
    recommendations_url: RecommendationsUrl = None,
    as_json: Json = False,
) -> None:
    """Extract customers, products and ratings; publish <lake>/ratings_ml_training atomically;
    then read what the stream delivered and the service served (`recpipe etl events`).

    One row per rating joined with its customer and product (recpipe.contracts.dataset), snappy Parquet
    partitioned customerNumber=<n> (or --layout compact), with _manifest.json. Rows that break the contract go to
    <lake>/ratings_ml_training_quarantine with a reason.
    """
    settings = load_settings({"source_url": source_url, "lake_url": lake_url, "engine": engine,
                              "recommendations_url": recommendations_url})
    manifest, online = etl_stage(settings, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                                 quiet=as_json, events=events, layout=layout)
    if as_json:
        emit_json(manifest.to_json() | {"events": online.totals() if online else None})
    else:
        _print(manifest)
        _print_events(online)


@app.command("events")
def events_command(
    engine: Annotated[str | None, typer.Option(
        help=f"ETL engine: {' or '.join(ENGINES)} (default: RECPIPE_ENGINE, else duckdb).",
        show_default=False)] = None,
    lake_url: LakeUrl = None,
    recommendations_url: RecommendationsUrl = None,
    as_json: Json = False,
) -> None:
    """Read the recommendations sink's new hours into <lake>/events and <lake>/impressions.

    The sink's objects (YYYY/MM/DD/HH/ from the stream, served/YYYY/MM/DD/HH/ from the service;
    plain or gzip NDJSON; processing-failed/ left out) become one row per product a session
    browsed, carted or bought, and one per list shown (recpipe.contracts.activity), partitioned
    date=YYYY-MM-DD. Only hours that are new or gained objects are read; a run is repeatable.
    Lines that cannot be read go to <lake>/events_quarantine with the reason.
    """
    settings = load_settings({"lake_url": lake_url, "engine": engine, "recommendations_url": recommendations_url})
    online = events_stage(settings, engine=engine, quiet=as_json)
    if as_json:
        emit_json(online.model_dump(mode="json") if online else None)
    else:
        _print_events(online)


@app.command("show")
def show(lake_url: LakeUrl = None, as_json: Json = False) -> None:
    """Print the manifests of the published training dataset and of the events read."""
    settings = load_settings({"lake_url": lake_url})
    lake = Backends(settings).lake()
    manifest = DatasetManifest.read(lake)
    online = read_manifest(lake)
    if as_json:
        emit_json(manifest.to_json() | {"events": online.totals() if online else None})
    else:
        _print(manifest)
        _print_events(online)


def _print_events(m: EventsManifest | None) -> None:
    if m is None:
        console.print("events: the recommendations sink has nothing to read yet")
        return
    t = m.totals()
    mapping("events and impressions", {
        "read from": m.sink, "hours read": len(m.hours), "objects": t["objects"], "lines": t["lines"],
        "events (product, kind, session)": t["events"], "impressions (lists shown)": t["impressions"],
        "lines quarantined": t["quarantined"], "last read": m.updated_at})


def _print(m: DatasetManifest) -> None:
    mapping(f"training dataset {m.version}", {
        "location": m.location, "rows": m.rows, "layout": m.format.get("layout", "partitioned"),
        "partitions (customers)": m.partitions,
        "files": m.files, "bytes": m.bytes, "engine": m.engine, "source": m.source,
        "created at": m.created_at, "seconds (until publish)": m.seconds["until_publish"],
        "fingerprint": m.fingerprint})
    q = m.quarantine
    if q.rows:
        table(f"quarantined: {q.rows:,} rows ({q.fraction:.2%}) in {q.location}",
              ("reason", "rows", "meaning"),
              [(k, v, q.reasons.get(k, "")) for k, v in q.by_reason.items()])
    else:
        console.print("quarantine: no rating broke the contract")
