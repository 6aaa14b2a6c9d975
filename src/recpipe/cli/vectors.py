"""``recpipe vectors``: load the embeddings into PostgreSQL + pgvector and query them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from recpipe.cli.output import bars, console, emit_json, mapping, table
from recpipe.config import Settings, load_settings
from recpipe.contracts.limits import MAX_EF_SEARCH, MAX_K

if TYPE_CHECKING:
    from recpipe.vectors.pipeline import LoadResult

app = typer.Typer(help="The vector database: PostgreSQL + pgvector, embedded by default.", no_args_is_help=True)

VectorsUrl = Annotated[str | None, typer.Option("--vectors-url", show_default=False,
                                                help="pgserver:///path or postgresql://…; overrides RECPIPE_VECTORS_URL.")]
ArtifactsUrl = Annotated[str | None, typer.Option("--artifacts-url", show_default=False,
                                                  help="Where the embeddings are; overrides RECPIPE_ARTIFACTS_URL.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
K = Annotated[int, typer.Option("-k", "--k", min=1, max=MAX_K, help="How many items.")]
Exclude = Annotated[list[str] | None, typer.Option("--exclude", help="A product code to leave out (repeatable).")]
InStock = Annotated[bool, typer.Option("--in-stock", help="Only items with quantity in stock > 0.")]
Line = Annotated[str | None, typer.Option("--product-line", help="Only items of this product line.")]
Ef = Annotated[int | None, typer.Option("--ef-search", min=1, max=MAX_EF_SEARCH,
                                        help="HNSW candidates to consider (recall vs speed; default 40).")]


def vectors_stage(settings: Settings, *, catalog: bool = True, quiet: bool = False, force: bool = False,
                  version: str | None = None) -> LoadResult:
    """``vectors.pipeline.run`` with the settings and a status line (the CLI and the demo);
    ``version``: a registered model instead of the latest published one."""
    from recpipe.adapters import Backends
    from recpipe.vectors.pipeline import run

    db = Backends(settings).vectors()
    store, name = Backends(settings).artifacts()
    if version is not None:
        from recpipe.vectors.models import require_registered

        name = require_registered(store, version)
    source = Backends(settings).source() if catalog else None
    try:
        with bars(quiet=quiet, transient=True) as progress:
            return run(db, store, name, source=source, progress=progress, force=force,
                       tolerance=settings.gate_tolerance, keep=settings.models_keep)
    finally:
        if source is not None:
            source.close()


def gate_table(gate: dict[str, Any]) -> None:
    """The promotion gate's verdict, figure by figure."""
    verdict = "forced" if gate["forced"] else "passed" if gate["passed"] else "failed"
    against = f" against {gate['serving']}" if gate["serving"] else ""
    table(f"promotion gate{against}: {verdict} ({gate['reason']})",
          ("figure", "new", "serving", "limit", "ok"),
          [(c["figure"], "-" if c["new"] is None else round(c["new"], 4), round(c["serving"], 4), c["limit"],
            ("yes" if c["passed"] else "NO") if c.get("judged", True) else "too few to judge")
           for c in gate["checks"]])


@app.command("load")
def load(artifacts_url: ArtifactsUrl = None, vectors_url: VectorsUrl = None,
         source_url: Annotated[str | None, typer.Option(
             "--source-url", show_default=False, help="Source database for the catalog and purchases; "
                                                      "overrides RECPIPE_SOURCE_URL.")] = None,
         catalog: Annotated[bool, typer.Option(
             "--catalog/--no-catalog", help="Also load the product catalog and who bought what from the source "
                                            "(serving uses them for new products and 'already bought').")] = True,
         force: Annotated[bool, typer.Option(
             "--force", help="Serve the new model even if the promotion gate fails.")] = False,
         version: Annotated[str | None, typer.Option(
             "--version", show_default=False, help="Load this registered model version instead of the latest "
                                                   "published one (`recpipe models list`).")] = None,
         as_json: Json = False) -> None:
    """Load the artifacts' item and user embeddings beside the loaded models and serve them if
    the promotion gate passes (exit code 3 when it does not).

    The gate compares the new model's offline figures (its manifest) with the serving model's:
    each may be worse by RECPIPE_GATE_TOLERANCE (5%) at most; the verdict is printed and kept
    (`recpipe models show`). A model that fails stays loaded, not served: `--force`, or
    `recpipe models promote VERSION` later, serves it. Atomic: queries keep answering from what
    served until the switch, and a failed load changes nothing. Beyond RECPIPE_MODELS_KEEP
    loaded models (3) the oldest are dropped. The embedded PostgreSQL starts on first use and
    keeps running for later commands (`recpipe vectors stop` stops it).
    """
    settings = load_settings({"artifacts_url": artifacts_url, "vectors_url": vectors_url, "source_url": source_url})
    result = vectors_stage(settings, catalog=catalog, quiet=as_json, force=force, version=version)
    _show_load(result, as_json)
    if not result.promoted:
        raise typer.Exit(GATE_FAILED)


GATE_FAILED = 3  # `vectors load` exit code: loaded, but the gate kept the serving model


def _show_load(result: LoadResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
    else:
        mapping("vectors loaded", {"model version": result.model_version, "items": result.items,
                                   "users": result.users, "catalog products": result.catalog,
                                   "purchases": result.purchases, "database": result.vectors,
                                   "from": result.artifacts, "copy s": result.seconds["copy"],
                                   "index s": result.seconds["index"], "total s": result.seconds["total"],
                                   "serving": result.serving, "dropped": ", ".join(result.dropped or []) or "-"})
        if result.gate is not None:
            gate_table(result.gate)
        if not result.promoted:
            console.print(f"model {escape(result.model_version)} is loaded but not served: the gate failed. "
                          f"Serve it anyway with `recpipe models promote {escape(result.model_version)}`.")


def _queries(vectors_url: str | None, ef_search: int | None) -> Any:
    from recpipe.adapters import Backends
    from recpipe.vectors.query import VectorQueries

    settings = load_settings({"vectors_url": vectors_url})
    return VectorQueries(Backends(settings).vectors(), ef_search=ef_search)


def _show(title: str, found: list[Any] | None, missing: str, as_json: bool) -> None:
    from recpipe.errors import InputError

    if found is None:
        raise InputError(missing, hint="is it in the training data? `recpipe vectors load` loads the latest model")
    if as_json:
        emit_json([s.to_json() for s in found])
    else:
        table(title, ("rank", "id", "cosine similarity"), [(i + 1, s.id, s.score) for i, s in enumerate(found)])


def _ask(vectors_url: str | None, ef_search: int | None, product_line: str | None, ask: Any) -> Any:
    """``ask(queries)`` on the vector database, a product line nobody has refused first."""
    from recpipe.vectors.query import check_product_line

    with _queries(vectors_url, ef_search) as q:
        if product_line is not None:
            check_product_line(product_line, q.product_lines())
        return ask(q)


@app.command("similar")
def similar(item_id: Annotated[str, typer.Argument(help="A product code, e.g. S10_1678.")], k: K = 10,
            exclude: Exclude = None, in_stock: InStock = False, product_line: Line = None,
            ef_search: Ef = None, vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Items most similar to ITEM_ID (never itself), best first."""
    from recpipe.vectors.query import Filters

    filters = Filters(in_stock, product_line)
    found = _ask(vectors_url, ef_search, product_line,
                 lambda q: q.similar_items(item_id, k, exclude=exclude or (), filters=filters))
    _show(f"items similar to {item_id}", found, f"product {item_id!r} has no embedding", as_json)


@app.command("for-user")
def for_user(customer_number: Annotated[int, typer.Argument(help="A customerNumber, e.g. 103.")], k: K = 10,
             exclude: Exclude = None, in_stock: InStock = False, product_line: Line = None,
             ef_search: Ef = None, vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Items for a customer, from their stored embedding, best first."""
    from recpipe.vectors.query import Filters

    filters = Filters(in_stock, product_line)
    found = _ask(vectors_url, ef_search, product_line,
                 lambda q: q.items_for_user(customer_number, k, exclude=exclude or (), filters=filters))
    _show(f"items for customer {customer_number}", found, f"customer {customer_number} has no embedding", as_json)


@app.command("status")
def status(vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """What is loaded (model version, counts, when)."""
    from recpipe.adapters import Backends
    from recpipe.vectors.pipeline import loaded

    settings = load_settings({"vectors_url": vectors_url})
    info = loaded(Backends(settings).vectors())
    if as_json:
        emit_json(info)
    elif info is None:
        console.print("nothing loaded yet: run `recpipe vectors load`")
    else:
        mapping("vectors", info)


@app.command("stop")
def stop(vectors_url: VectorsUrl = None) -> None:
    """Stop the embedded PostgreSQL (a no-op for a postgresql:// server)."""
    from recpipe.adapters import Backends

    settings = load_settings({"vectors_url": vectors_url})
    db = Backends(settings).vectors()
    console.print(f"stopped {db.url}" if db.stop() else f"nothing to stop at {db.url}")
