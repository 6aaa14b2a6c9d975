"""The root ``recpipe`` command and ``recpipe config``."""

from __future__ import annotations

from typing import Annotated

import typer

from recpipe import __version__
from recpipe.cli import (
    demo,
    etl,
    experiments,
    models,
    package,
    report,
    serve,
    source,
    stream,
    train,
    vectors,
)
from recpipe.cli.output import console, emit_json, table
from recpipe.config import ROLES, load_settings

app = typer.Typer(
    name="recpipe",
    help="recpipe: from a shop's MySQL database and click stream to real-time recommendations.\n\n"
    "Every backend is a URL read from a RECPIPE_* variable (or .env); each has an embedded "
    "default under RECPIPE_HOME (./.recpipe), so everything runs on a laptop as it is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(source.app, name="source")
app.add_typer(etl.app, name="etl")
app.command("train")(train.train)
app.add_typer(vectors.app, name="vectors")
app.add_typer(models.app, name="models")
app.add_typer(experiments.app, name="experiments")
app.command("serve")(serve.serve)
app.add_typer(stream.app, name="stream")
app.command("demo")(demo.demo)
app.command("package")(package.package)
app.command("report")(report.report)


def _version(value: bool) -> None:
    if value:
        console.print(f"recpipe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """recpipe: an end-to-end recommendation pipeline."""


@app.command("config")
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document instead of a table.")] = False,
) -> None:
    """Show the resolved settings (passwords masked) and where each value came from."""
    settings = load_settings()
    values = settings.masked()
    if as_json:
        emit_json({f: {"env": ROLES[f].env, "value": values[f], "origin": settings.origins[f]}
                   for f in ROLES})
        return
    table("recpipe settings", ("role", "variable", "value", "from"),
          [(ROLES[f].what, ROLES[f].env, values[f], settings.origins[f]) for f in ROLES])
