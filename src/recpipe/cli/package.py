"""``recpipe package``: build what AWS runs (the Lambda zip, the Glue wheel and script)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recpipe.cli.output import bars, emit_json, table


def package(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder Terraform points at (replaced files).")]
    = Path("dist/aws"),
    python: Annotated[str, typer.Option(help="Python version of the Lambda runtime.")] = "3.11",
    architecture: Annotated[str, typer.Option(help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build what terraform/ deploys: dist/aws/lambda.zip (the package and what its Lambda
    handlers import, as Linux wheels; no torch, no Arrow), dist/aws/arrow-layer.zip (the Lambda
    layer the vectors loader adds: Arrow, SQLAlchemy, PyMySQL) and dist/aws/glue/ (the package
    as a wheel and the Glue job's entry script), with manifest.json listing each file's size
    and SHA-256. Run it from a checkout; it fetches wheels from the package index pip is
    configured with.

    The wheels are for Lambda's python3.11 runtime (Amazon Linux 2, glibc 2.26): numpy and
    Arrow come at their newest releases that still ship such wheels."""
    from recpipe.deploy.package import build

    with bars(quiet=as_json) as progress:
        result = build(output, python=python, architecture=architecture, progress=progress)
    if as_json:
        emit_json(result.to_json())
        return
    table(f"built in {output}", ("file", "MiB", "MiB unzipped", "sha256"),
          [(name, f"{f.bytes / 2**20:.1f}", f"{f.unzipped_bytes / 2**20:.1f}", f.sha256[:16])
           for name, f in result.files.items()])
    table("Lambda handlers", ("function", "handler"), result.handlers.items())
