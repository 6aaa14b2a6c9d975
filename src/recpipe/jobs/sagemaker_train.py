"""Amazon SageMaker training job entry: ``recpipe train`` under SageMaker's conventions.

SageMaker (``terraform/modules/training``) runs this in its PyTorch training container, with the
package installed from its wheel ("script mode"). The job's hyperparameters are ``recpipe train``'s
options by name, its values as SageMaker gives them (strings; ``true``/``false`` for on/off)::

    lake-url        s3://bucket/lake         the lake with ratings_ml_training (read from S3), or
                                             nothing: the ``lake`` input channel, copied by SageMaker
                                             to /opt/ml/input/data/lake (``SM_CHANNEL_LAKE``)
    artifacts-url   s3://bucket/artifacts    where to publish: the store the loader watches
    max-epochs, seed, rating-baseline, events, objective, ...   as ``recpipe train --help`` says

SageMaker's settings it reads: ``SM_HPS`` (the hyperparameters as JSON; else
``/opt/ml/input/config/hyperparameters.json``), ``SM_CHANNEL_LAKE``, ``SM_MODEL_DIR`` (the model's
manifest is written there, so the job's model.tar.gz says which model it made) and
``SM_OUTPUT_DIR`` (on failure, ``failure`` there holds the one-line reason SageMaker shows as the
job's FailureReason). It prints ``metric <name>=<value>`` lines for the job's metric definitions.
The same command runs anywhere::

    SM_HPS='{"lake-url": "s3://b/lake", "artifacts-url": "s3://b/artifacts"}' python -m recpipe.jobs.sagemaker_train
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"
CHANNEL = "SM_CHANNEL_LAKE"
MODEL_MANIFEST = "model_manifest.json"


def hyperparameters(environ: Mapping[str, str], argv: list[str]) -> dict[str, str]:
    """The job's hyperparameters: ``SM_HPS``, else SageMaker's file; ``--name value`` pairs in
    ``argv`` (how SageMaker also passes them to a script) win."""
    if "SM_HPS" in environ:
        found: dict[str, Any] = json.loads(environ["SM_HPS"])
    else:
        path = Path(environ.get("SM_INPUT_CONFIG_DIR", Path(HYPERPARAMETERS).parent)) / "hyperparameters.json"
        found = json.loads(path.read_text()) if path.is_file() else {}
    rest = list(argv)
    while rest:
        key = rest.pop(0)
        if not key.startswith("--"):
            raise ValueError(f"unexpected argument {key!r}: hyperparameters come as --name value")
        name, _, value = key[2:].partition("=")
        found[name] = value if _ else (rest.pop(0) if rest and not rest[0].startswith("--") else "true")
    return {k: str(v) for k, v in found.items() if not k.startswith("sagemaker_")}  # the toolkit's own


def train_options(hps: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """``recpipe train``'s options by name: the hyperparameters, and the lake channel's copy
    as the lake when no ``lake-url`` is given."""
    options = {k.replace("_", "-"): v for k, v in hps.items()}
    if "lake-url" not in options and environ.get(CHANNEL):
        options["lake-url"] = environ[CHANNEL]
    return options


def train_arguments(options: Mapping[str, str]) -> list[str]:
    """``recpipe train`` arguments for these options (``true``/``false``: an on/off flag)."""
    args = ["train", "--json"]
    for name, value in sorted(options.items()):
        if value.lower() in ("true", "false"):
            args.append(f"--{name}" if value.lower() == "true" else f"--no-{name}")
        else:
            args += [f"--{name}", value]
    return args


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    import typer

    from recpipe.cli.app import app
    from recpipe.errors import RecpipeError

    environ = os.environ if environ is None else environ
    output = Path(environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    try:
        options = train_options(hyperparameters(environ, sys.argv[1:] if argv is None else argv), environ)
        args = train_arguments(options)
        print(f"recpipe {' '.join(args)}", file=sys.stderr, flush=True)
        code = app(args, standalone_mode=False, prog_name="recpipe")
        if code:  # a usage problem click reported itself
            _write(output / "failure", f"recpipe train exited with {code}")
            return int(code)
        _keep_manifest(options, environ)
    except (RecpipeError, typer.TyperException, ValueError) as exc:  # a bad option: typer's UsageError
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"error: {message}", file=sys.stderr, flush=True)
        _write(output / "failure", f"recpipe train: {message}"[:1000])
        return getattr(exc, "exit_code", 2) or 2
    return 0


def _keep_manifest(options: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """The published manifest into ``SM_MODEL_DIR``: SageMaker's model.tar.gz then names the model."""
    model_dir = environ.get("SM_MODEL_DIR")
    if not model_dir:
        return
    from recpipe.adapters import Backends
    from recpipe.config import load_settings
    from recpipe.contracts.artifacts import MANIFEST, artifact_path

    settings = load_settings({"lake_url": options.get("lake-url"), "artifacts_url": options.get("artifacts-url")})
    store, name = Backends(settings).artifacts()
    body = store.read_bytes(artifact_path(name, MANIFEST))
    if body is None:
        return
    _write(Path(model_dir) / MODEL_MANIFEST, body.decode())
    for line in metric_lines(json.loads(body)):
        print(line, file=sys.stderr, flush=True)


def metric_lines(manifest: Mapping[str, Any]) -> list[str]:
    """``metric <name>=<value>`` per figure: what the job's metric definitions read from its log."""
    metrics = manifest.get("metrics") or {}
    figures = {"recall_at_10": metrics.get("recall_at_10"), "ndcg_at_10": metrics.get("ndcg_at_10"),
               "popularity_recall_at_10": ((metrics.get("baselines") or {}).get("popularity") or {}).get("recall_at_10"),
               "cold_start_recall_at_10": (metrics.get("cold_start") or {}).get("recall_at_10"),
               "rmse": metrics.get("rmse")}
    return [f"metric {k}={v:.6f}" for k, v in figures.items() if isinstance(v, int | float)]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
