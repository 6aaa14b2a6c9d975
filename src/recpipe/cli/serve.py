"""``recpipe serve``: the inference service over HTTP (FastAPI + uvicorn)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from typing import Annotated

import typer

from recpipe.config import load_settings
from recpipe.contracts.limits import MAX_EF_SEARCH
from recpipe.errors import require


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    ef_search: Annotated[int | None, typer.Option(min=1, max=MAX_EF_SEARCH, show_default=False,
                                                  help="HNSW candidates per query [default: "
                                                       "RECPIPE_SERVE_EF_SEARCH, else 40].")] = None,
    reload_every: Annotated[float | None, typer.Option(min=0.1, show_default=False,
                                                       help="Seconds between checks for a newly published model or "
                                                            "vectors load [default: RECPIPE_SERVE_RELOAD_EVERY, "
                                                            "else 10].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes (more use more cores for Python).")] = 1,
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="Database threads (and connections) per process "
                                                                     "[default: RECPIPE_SERVE_THREADS, else cores ÷ "
                                                                     "workers, at least 1]. More "
                                                                     "when the database runs on other machines.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    vectors_url: Annotated[str | None, typer.Option(
        "--vectors-url", show_default=False,
        help="pgserver:///path or postgresql://…; overrides RECPIPE_VECTORS_URL.")] = None,
    artifacts_url: Annotated[str | None, typer.Option(
        "--artifacts-url", show_default=False, help="Where the model is; overrides RECPIPE_ARTIFACTS_URL.")] = None,
) -> None:
    """Serve recommendations: the seed's /user_embeddings, /items_from_user, /items_from_item,
    the rich /recommendations/{customer_number}, /health, /ready and /metrics; the OpenAPI page
    is at /docs. Reads the model from RECPIPE_ARTIFACTS_URL and queries RECPIPE_VECTORS_URL
    (or the flags below); the RECPIPE_SERVE_* settings give the defaults of the tuning flags.
    """
    uvicorn = require("uvicorn", "serve", "The HTTP service")
    from recpipe.api.app import create_app
    from recpipe.api.service import Service, default_threads
    from recpipe.cli.output import err_console

    settings = load_settings({"vectors_url": vectors_url, "artifacts_url": artifacts_url})
    # about one database thread per core in all: more only queue for the GIL and the cores
    threads = threads or settings.serve_threads or max(1, default_threads() // workers)
    settings = replace(settings, serve_threads=threads, serve_ef_search=ef_search or settings.serve_ef_search,
                       serve_reload_every=reload_every or settings.serve_reload_every)
    fast = {"loop": "uvloop", "http": "httptools"} if _have("uvloop") and _have("httptools") else {}
    err_console.print(f"serving on http://{host}:{port} with {workers} process(es) × {threads} database thread(s) "
                      f"(OpenAPI: http://{host}:{port}/docs)")
    if workers == 1:
        service = Service(settings)
        uvicorn.run(create_app(settings, service=service), host=host, port=port, log_level=log_level,
                    access_log=False, **fast)
        return
    # several processes: each builds its own app from the environment; metrics are summed
    with tempfile.TemporaryDirectory(prefix="recpipe-metrics-") as metrics_dir:
        os.environ.update({"PROMETHEUS_MULTIPROC_DIR": metrics_dir, **settings.environment()})
        uvicorn.run("recpipe.api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False, **fast)


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
