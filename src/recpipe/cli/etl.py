"""``recpipe etl``: build the training dataset in the lake, and show what was published."""

from __future__ import annotations

from typing import Annotated

import typer

from recpipe.adapters import Backends
from recpipe.cli.output import bars, console, emit_json, mapping, table
from recpipe.config import Settings, load_settings
from recpipe.contracts.dataset import ENGINES, DatasetManifest
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.load import read_sidecar, sidecar_path

app = typer.Typer(help="Build the Parquet training dataset from the source (DuckDB or Spark).",
                  no_args_is_help=True)

SourceUrl = Annotated[str | None, typer.Option("--source-url", show_default=False,
                                               help="Source database URL; overrides RECPIPE_SOURCE_URL.")]
LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake directory or s3://bucket/prefix; overrides RECPIPE_LAKE_URL.")]
Json = Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")]


def etl_stage(settings: Settings, *, engine: str | None = None, max_quarantine_fraction: float = 0.05,
                 quiet: bool = False) -> DatasetManifest:
    """``etl.pipeline.run`` with the settings and progress bars (the CLI and the demo)."""
    db = Backends(settings).source()
    lake = Backends(settings).lake()
    engine = engine or settings.engine
    generator = read_sidecar(sidecar_path(settings.home, db))
    spark = None
    if engine == "spark":
        from recpipe.etl.spark_engine import local_session

        spark = local_session(master=settings.spark_master, driver_memory=settings.spark_driver_memory,
                              jars=settings.spark_jars)
    with bars(quiet=quiet) as progress:
        return run_etl(db, lake, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                       generator=generator, spark=spark, progress=progress)


@app.command("run")
def run(
    engine: Annotated[str | None, typer.Option(
        help=f"ETL engine: {' or '.join(ENGINES)} (default: RECPIPE_ENGINE, else duckdb). "
             "spark runs the AWS Glue job's code on a local Spark.", show_default=False)] = None,
    max_quarantine_fraction: Annotated[float, typer.Option(
        help="Fail, leaving the published dataset as it was, if more than this fraction of "
             "ratings break the contract.")] = 0.05,
    source_url: SourceUrl = None,
    lake_url: LakeUrl = None,
    as_json: Json = False,
) -> None:
    """Extract customers, products and ratings; publish <lake>/ratings_ml_training atomically.

    One row per rating joined with its customer and product (recpipe.contracts.dataset), snappy Parquet
    partitioned customerNumber=<n>, with _manifest.json. Rows that break the contract go to
    <lake>/ratings_ml_training_quarantine with a reason.
    """
    settings = load_settings({"source_url": source_url, "lake_url": lake_url, "engine": engine})
    manifest = etl_stage(settings, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                            quiet=as_json)
    if as_json:
        emit_json(manifest.to_json())
    else:
        _print(manifest)


@app.command("show")
def show(lake_url: LakeUrl = None, as_json: Json = False) -> None:
    """Print the manifest of the published training dataset."""
    settings = load_settings({"lake_url": lake_url})
    manifest = DatasetManifest.read(Backends(settings).lake())
    if as_json:
        emit_json(manifest.to_json())
    else:
        _print(manifest)


def _print(m: DatasetManifest) -> None:
    mapping(f"training dataset {m.version}", {
        "location": m.location, "rows": m.rows, "partitions (customers)": m.partitions,
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
