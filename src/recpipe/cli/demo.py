"""``recpipe demo``: every stage that exists so far, on the embedded defaults."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from recpipe.cli.output import console, emit_json, table
from recpipe.config import Settings, load_settings
from recpipe.source.generate import PRESETS


def demo(
    scale: Annotated[str, typer.Option(help=f"Shop size preset: {', '.join(PRESETS)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Run the whole pipeline end to end on the embedded defaults and summarise it.

    Stages so far: source (a synthetic shop in SQLite under RECPIPE_HOME), etl (the Parquet
    training dataset in the lake, DuckDB engine) and train (the two-tower model and its
    artifacts in <lake>/ml-artifacts) and vectors (the embeddings in the embedded PostgreSQL +
    pgvector, which keeps running for `recpipe vectors similar …` and `recpipe serve`;
    `recpipe vectors stop` stops it) and serve (the inference service, started on a free local
    port for one request over HTTP, then stopped). The demo always rebuilds its data.
    """
    from recpipe.cli.etl import run_pipeline
    from recpipe.cli.source import init_source
    from recpipe.cli.train import print_evaluation, run_training
    from recpipe.cli.vectors import run_load

    settings = load_settings()
    stages = []
    started = time.perf_counter()
    if not as_json:
        console.rule("[bold]1. source[/]: a synthetic shop")
    t0 = time.perf_counter()
    source = init_source(settings, preset=scale, seed=seed, replace=True, quiet=as_json)
    stages.append({"stage": "source", "seconds": round(time.perf_counter() - t0, 2),
                   "result": f"{source['counts']['ratings']:,} ratings from "
                             f"{source['counts']['customers']:,} customers in {source['source']}"})
    if not as_json:
        console.rule("[bold]2. etl[/]: the training dataset")
    t0 = time.perf_counter()
    manifest = run_pipeline(settings, quiet=as_json)
    stages.append({"stage": "etl", "seconds": round(time.perf_counter() - t0, 2),
                   "result": f"{manifest['rows']:,} rows in {manifest['partitions']:,} partitions "
                             f"({manifest['engine']}), {manifest['quarantine']['rows']:,} quarantined, "
                             f"at {manifest['location']}"})
    if not as_json:
        console.rule("[bold]3. train[/]: the two-tower model")
    t0 = time.perf_counter()
    model = run_training(settings, quiet=as_json)
    metrics = model["metrics"]
    stages.append({"stage": "train", "seconds": round(time.perf_counter() - t0, 2),
                   "result": f"model {model['model_version']}: held-out RMSE {metrics['rmse']:.3f} "
                             f"(per-item mean {metrics['baselines']['item_mean']['rmse']:.3f}), "
                             f"artifacts at {settings.artifacts_url}"})
    if not as_json:
        print_evaluation(model)
        console.rule("[bold]4. vectors[/]: embeddings into PostgreSQL + pgvector")
    t0 = time.perf_counter()
    vectors = run_load(settings, quiet=as_json)
    stages.append({"stage": "vectors", "seconds": round(time.perf_counter() - t0, 2),
                   "result": f"{vectors['items']:,} item and {vectors['users']:,} user embeddings with HNSW "
                             f"indexes in {vectors['vectors']}"})
    if not as_json:
        console.rule("[bold]5. serve[/]: recommendations over HTTP")
    t0 = time.perf_counter()
    served = ask_the_service(settings)
    stages.append({"stage": "serve", "seconds": round(time.perf_counter() - t0, 2),
                   "result": f"GET /recommendations/{served['customer_number']} → "
                             f"{', '.join(i['id'] for i in served['items'])} (model {served['model_version']})"})
    if not as_json:
        table(f"recommendations for customer {served['customer_number']} ({served['strategy']} embedding), "
              f"served over HTTP", ("product", "product line", "score"),
              [(i["id"], i["product_line"] or "", f"{i['score']:.3f}") for i in served["items"]])
    total = round(time.perf_counter() - started, 2)
    if as_json:
        emit_json({"home": str(settings.home), "stages": stages, "seconds": total,
                   "rmse_floor": source["rmse_floor"], "model_version": model["model_version"],
                   "metrics": metrics})
        return
    table(f"recpipe demo: done in {total:.1f} s (home {settings.home})", ("stage", "seconds", "result"),
          [(s["stage"], f"{s['seconds']:.2f}", s["result"]) for s in stages])
    console.print(f"try: recpipe serve, then curl 'localhost:8000/recommendations/{served['customer_number']}?k=5'"
                  " (OpenAPI page at /docs) · recpipe vectors similar <productCode> -k 5 · recpipe vectors stop "
                  "(stops the embedded PostgreSQL)")


def ask_the_service(settings: Settings) -> dict[str, Any]:
    """Start the inference service on a free local port, ask it for one customer's
    recommendations (the first customer with an embedding) over real HTTP, stop it."""
    import json
    import urllib.request

    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service
    from recpipe.vectors import schema

    service = Service(settings)
    with service.queries() as q:
        customer = q.conn.execute(f"SELECT min(id) FROM {schema.USERS}").fetchone()[0]
    with serving(create_app(settings, service=service)) as url, \
            urllib.request.urlopen(f"{url}/recommendations/{customer}?k=5&max_per_line=2", timeout=30) as answer:
        return json.loads(answer.read())
