"""``recpipe source``: create, fill and inspect the shop's source database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from recpipe.adapters import Backends
from recpipe.cli.output import bars, console, emit_json, err_console, mapping, table
from recpipe.config import Settings, load_settings
from recpipe.source.dump import load_dump, read_dump
from recpipe.source.generate import PRESETS, spec_for
from recpipe.source.load import sidecar_path
from recpipe.source.pipeline import ShopResult, run
from recpipe.source.ratings import add_ratings as derive_and_add

app = typer.Typer(help="Create, fill and inspect the source database (classicmodels + ratings).",
                  no_args_is_help=True)

SourceUrl = Annotated[str | None, typer.Option(
    "--source-url", help="Source database URL; overrides RECPIPE_SOURCE_URL.", show_default=False)]
Replace = Annotated[bool, typer.Option("--replace", help="Overwrite existing classicmodels tables.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of tables.")]


def source_stage(settings: Settings, *, preset: str | None = None, customers: int | None = None,
                products: int | None = None, seed: int | None = None, replace: bool = False,
                quiet: bool = False) -> ShopResult:
    """``source.pipeline.run`` with the settings and progress bars (the CLI and the demo)."""
    spec = spec_for(preset, customers=customers, products=products, seed=seed)
    db = Backends(settings).source()
    if not quiet:
        console.print(f"generating a shop of {spec.customers:,} customers and {spec.products:,} "
                      f"products (seed {spec.seed}) into [bold]{escape(db.url)}[/]")
    with bars(quiet=quiet) as progress:
        return run(db, spec, sidecar=sidecar_path(settings.home, db), replace=replace, progress=progress)


@app.command("init")
def init(
    scale: Annotated[str, typer.Option(
        help=f"Preset size: {', '.join(f'{k} ({v.customers:,} customers, {v.products:,} products)' for k, v in PRESETS.items())}.")] = "small",
    customers: Annotated[int | None, typer.Option(help="Number of customers (overrides --scale).",
                                                  show_default=False)] = None,
    products: Annotated[int | None, typer.Option(help="Number of products (overrides --scale).",
                                                 show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows everywhere.")] = 42,
    replace: Replace = False,
    source_url: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Fill the source database with a synthetic shop with planted rating structure.

    Writes the generator's parameters, with the two RMSE floors a model is judged against,
    to a sidecar JSON file. The load is atomic: on failure nothing is left behind.
    """
    settings = load_settings({"source_url": source_url})
    result = source_stage(settings, preset=scale, customers=customers, products=products, seed=seed,
                         replace=replace, quiet=as_json)
    if as_json:
        emit_json(result.to_json())
        return
    table("rows written", ("table", "rows"), result.counts.items())
    floors = result.rmse_floor
    mapping("RMSE floors (best reachable on the 1-5 scale)", {
        "features only": floors["features"], "features + identities": floors["identity"],
        "parameters": result.generator_params})


@app.command("load-dump")
def load_dump_cmd(
    file: Annotated[Path, typer.Argument(help="A classicmodels MySQL dump (.sql).", show_default=False)],
    replace: Replace = False,
    source_url: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Load a standard classicmodels MySQL dump into the source database.

    Natively into MySQL/MariaDB; into SQLite (the default) or PostgreSQL by translating the
    dialect. Add ratings afterwards with `recpipe source add-ratings`.
    """
    settings = load_settings({"source_url": source_url})
    db = Backends(settings).source()
    dump = read_dump(file)
    if not as_json:
        console.print(f"loading {file} ({len(dump.statements):,} statements) into [bold]{escape(db.url)}[/]")
    with err_console.status("loading the dump"):
        counts = load_dump(db, dump, replace=replace)
    sidecar_path(settings.home, db).unlink(missing_ok=True)  # no longer a synthetic shop
    if as_json:
        emit_json({"source": db.url, "counts": counts})
    else:
        table("rows loaded", ("table", "rows"), counts.items())
        if "ratings" not in counts:
            console.print("next: [bold]recpipe source add-ratings[/] derives one rating per purchased pair")


@app.command("add-ratings")
def add_ratings(
    seed: Annotated[int, typer.Option(help="Random seed for the derived ratings.")] = 42,
    replace: Replace = False,
    source_url: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Derive a `ratings` table (one per purchased customer/product pair) for a database without one."""
    settings = load_settings({"source_url": source_url})
    db = Backends(settings).source()
    rows = derive_and_add(db, seed=seed, replace=replace)
    if as_json:
        emit_json({"source": db.url, "ratings": rows})
    else:
        console.print(f"added {rows:,} ratings to [bold]{escape(db.url)}[/]")
