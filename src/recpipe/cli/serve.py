"""``recpipe serve``: the inference service over HTTP (FastAPI + uvicorn)."""

from __future__ import annotations

import enum
import os
import tempfile
from dataclasses import replace
from typing import Annotated, Any

import typer

from recpipe.api.auth import is_loopback
from recpipe.config import load_settings
from recpipe.contracts.limits import MAX_EF_SEARCH
from recpipe.errors import ConfigError, ServiceError, require


class LogLevel(enum.StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    ef_search: Annotated[int | None, typer.Option(min=1, max=MAX_EF_SEARCH, show_default=False,
                                                  help="HNSW candidates per query \\[default: "
                                                       "RECPIPE_SERVE_EF_SEARCH, else 40].")] = None,
    reload_every: Annotated[float | None, typer.Option(min=0.1, show_default=False,
                                                       help="Seconds between checks for a newly published model or "
                                                            "vectors load \\[default: RECPIPE_SERVE_RELOAD_EVERY, "
                                                            "else 10].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes (more use more cores for Python).")] = 1,
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="Database threads (and connections) per process "
                                                                     "\\[default: RECPIPE_SERVE_THREADS, else cores ÷ "
                                                                     "workers, at least 1]. More "
                                                                     "when the database runs on other machines.")] = None,
    log_level: Annotated[LogLevel, typer.Option(help="info logs one line per request.")] = LogLevel.warning,
    vectors_url: Annotated[str | None, typer.Option(
        "--vectors-url", show_default=False,
        help="pgserver:///path or postgresql://…; overrides RECPIPE_VECTORS_URL.")] = None,
    artifacts_url: Annotated[str | None, typer.Option(
        "--artifacts-url", show_default=False, help="Where the model is; overrides RECPIPE_ARTIFACTS_URL.")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen on a non-loopback address without RECPIPE_API_KEY (anyone who can reach it "
                           "can query it).")] = False,
) -> None:
    """Serve recommendations: the seed's /user_embeddings, /items_from_user, /items_from_item,
    the rich /recommendations/{customer_number}, /health, /ready and /metrics; the page (customers,
    products, the live stream, the pipeline) at /, and the OpenAPI page at /docs. Queries RECPIPE_VECTORS_URL and serves the model whose embeddings are loaded
    there (RECPIPE_ARTIFACTS_URL tells it when a newer one waits for `vectors load`); the
    RECPIPE_SERVE_* settings give the defaults of the tuning flags.

    With RECPIPE_API_KEY set, every endpoint but /health needs 'Authorization: Bearer <key>'.
    A --host other than loopback needs the key (or --insecure). --log-level info logs one
    line per request with its recommendation_id.
    """
    uvicorn = require("uvicorn", "serve", "The HTTP service")
    from recpipe.api.app import create_app
    from recpipe.api.service import Service, default_threads
    from recpipe.cli.output import err_console

    settings = load_settings({"vectors_url": vectors_url, "artifacts_url": artifacts_url})
    if not is_loopback(host) and not settings.api_key and not insecure:
        raise ConfigError(f"--host {host} is reachable from other machines and RECPIPE_API_KEY is not set: "
                          "anyone who can reach it could query the service",
                          hint="set RECPIPE_API_KEY (clients send 'Authorization: Bearer <key>'), or pass --insecure")
    _check_port_free(host, port)
    # about one database thread per core in all: more only queue for the GIL and the cores
    threads = threads or settings.serve_threads or max(1, default_threads() // workers)
    settings = replace(settings, serve_threads=threads, serve_ef_search=ef_search or settings.serve_ef_search,
                       serve_reload_every=reload_every or settings.serve_reload_every)
    fast = {"loop": "uvloop", "http": "httptools"} if _have("uvloop") and _have("httptools") else {}
    key = "API key required" if settings.api_key else "no API key"
    err_console.print(f"serving on http://{host}:{port} with {workers} process(es) × {threads} database thread(s), "
                      f"{key} (the page: http://{host}:{port}/, OpenAPI: http://{host}:{port}/docs)", highlight=False)
    level = log_level.value
    logs = _log_config(level)
    if workers == 1:
        service = Service(settings)
        uvicorn.run(create_app(settings, service=service), host=host, port=port, log_level=level,
                    access_log=False, log_config=logs, **fast)
        return
    # several processes: each builds its own app from the environment; metrics are summed
    with tempfile.TemporaryDirectory(prefix="recpipe-metrics-") as metrics_dir:
        os.environ.update({"PROMETHEUS_MULTIPROC_DIR": metrics_dir, **settings.environment()})
        uvicorn.run("recpipe.api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=level, access_log=False, log_config=logs, **fast)


def _check_port_free(host: str, port: int) -> None:
    """Fail before saying "serving on …" if the address is taken."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                               hint="pass another --port, or stop what is using it") from exc


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the request log (logger recpipe.requests) at ``level``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["recpipe"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
