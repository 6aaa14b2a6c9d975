"""``recpipe etl``: build the training dataset in the lake, and show what was published."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from recpipe.adapters import open_lake, open_source
from recpipe.cli.output import console, emit_json, err_console, mapping, row_progress, table
from recpipe.config import Settings, load_settings
from recpipe.contracts import source as schema
from recpipe.contracts.dataset import ENGINES, SOURCE_COLUMNS
from recpipe.etl.publish import read_manifest, run_etl
from recpipe.source.load import read_sidecar, sidecar_path

app = typer.Typer(help="Build the Parquet training dataset from the source (DuckDB or Spark).",
                  no_args_is_help=True)

SourceUrl = Annotated[str | None, typer.Option("--source-url", show_default=False,
                                               help="Source database URL; overrides RECPIPE_SOURCE_URL.")]
LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake directory or s3://bucket/prefix; overrides RECPIPE_LAKE_URL.")]
Json = Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of tables.")]


def run_pipeline(settings: Settings, *, engine: str | None = None, max_quarantine_fraction: float = 0.05,
                 quiet: bool = False) -> dict[str, Any]:
    """Run the ETL with progress; used by the CLI and the demo."""
    db = open_source(settings.source_url)
    lake = open_lake(settings.lake_url)
    engine = engine or settings.engine
    generator = read_sidecar(sidecar_path(settings.home, db))
    totals = _source_counts(db) if not quiet else {}
    with ExitStack() as stack:
        advance = stack.enter_context(row_progress({f"read {t}": n for t, n in totals.items()},
                                                   quiet=quiet))
        status = None if quiet else stack.enter_context(err_console.status("reading the source"))

        def on_stage(name: str) -> None:
            if status is not None:
                status.update({"transform": f"transforming with {engine} and writing partitions",
                               "validate": "checking the staged dataset",
                               "publish": f"publishing to {lake.url}"}[name])

        spark = None
        if engine == "spark":
            from recpipe.etl.spark_engine import local_session

            spark = local_session(master=settings.spark_master, driver_memory=settings.spark_driver_memory,
                                  jars=settings.spark_jars)
        manifest = run_etl(db, lake, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                           generator=generator, counter=lambda t, n: advance(f"read {t}", n),
                           on_stage=on_stage, spark=spark)
    return manifest


def _source_counts(db: Any) -> dict[str, int]:
    try:
        with db.engine().connect() as conn:
            return {t: conn.execute(select(func.count()).select_from(schema.table(t))).scalar_one()
                    for t in SOURCE_COLUMNS}
    except Exception:  # only for the progress bars: the run itself reports real problems
        return {}
    finally:
        db.close()


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
    manifest = run_pipeline(settings, engine=engine, max_quarantine_fraction=max_quarantine_fraction,
                            quiet=as_json)
    if as_json:
        emit_json(manifest)
    else:
        _print(manifest)


@app.command("show")
def show(lake_url: LakeUrl = None, as_json: Json = False) -> None:
    """Print the manifest of the published training dataset."""
    settings = load_settings({"lake_url": lake_url})
    manifest = read_manifest(open_lake(settings.lake_url))
    if as_json:
        emit_json(manifest)
    else:
        _print(manifest)


def _print(m: dict[str, Any]) -> None:
    mapping(f"training dataset {m['version']}", {
        "location": m["location"], "rows": m["rows"], "partitions (customers)": m["partitions"],
        "files": m["files"], "bytes": m["bytes"], "engine": m["engine"], "source": m["source"],
        "created at": m["created_at"], "seconds (until publish)": m["seconds"]["until_publish"], "fingerprint": m["fingerprint"]})
    q = m["quarantine"]
    if q["rows"]:
        table(f"quarantined: {q['rows']:,} rows ({q['fraction']:.2%}) in {q['location']}",
              ("reason", "rows", "meaning"),
              [(k, v, q["reasons"].get(k, "")) for k, v in q["by_reason"].items()])
    else:
        console.print("quarantine: no rating broke the contract")
