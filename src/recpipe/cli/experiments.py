"""``recpipe experiments``: show shoppers different models (or popularity) side by side and
compare what the lists earned."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from recpipe.cli.output import console, emit_json, table
from recpipe.cli.vectors import Json, VectorsUrl
from recpipe.config import Settings, load_settings
from recpipe.errors import InputError

app = typer.Typer(help="A/B experiments: models (or popularity) side by side, judged by what shoppers did.",
                  no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="The experiment's name.", show_default=False)]
LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake directory or s3://bucket/prefix; overrides RECPIPE_LAKE_URL.")]
Refresh = Annotated[bool, typer.Option(
    "--refresh/--no-refresh", help="Read the recommendations sink's new hours first (`recpipe etl events`).")]


def _settings(vectors_url: str | None, lake_url: str | None = None) -> tuple[Settings, Any]:
    from recpipe.adapters import Backends

    settings = load_settings({"vectors_url": vectors_url, "lake_url": lake_url})
    return settings, Backends(settings).vectors()


def _pairs(variants: list[str]) -> list[tuple[str, str]]:
    out = []
    for text in variants:
        name, sep, target = text.partition("=")
        if not sep or not name or not target:
            raise InputError(f"--variant {text!r} is not NAME=VERSION or NAME=popularity",
                             hint="e.g. --variant A=20261205T100949Z-aa134fbe --variant B=popularity")
        out.append((name, target))
    return out


@app.command("start")
def start(name: Name,
          variant: Annotated[list[str], typer.Option(
              "--variant", help="NAME=<model version> or NAME=popularity (repeat, two or more); the first is the "
                                "control the others are compared with.", show_default=False)],
          split: Annotated[list[float] | None, typer.Option(
              "--split", help="Percent of shoppers per variant, in order (repeat; the last variant takes the "
                              "rest). Default: equal shares.", show_default=False)] = None,
          vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Start an experiment: from now on every customer (a visitor: every session) is in one
    variant, by a hash of the experiment's name and the shopper, on the service and the stream
    alike, and every answer says its `variant`. The models must be loaded (`recpipe models list`).
    One experiment runs at a time."""
    from recpipe.vectors import experiments
    from recpipe.vectors.connect import connect

    _, db = _settings(vectors_url)
    with connect(db) as conn:
        started = experiments.start(conn, name, _pairs(variant), split)
    if as_json:
        emit_json(started.model_dump(mode="json"))
        return
    console.print(f"experiment {escape(name)} started: " + ", ".join(
        f"{escape(v.name)} = {escape(v.target)} ({v.share:g}%)" for v in started.variants)
        + ". Serving follows within RECPIPE_SERVE_SWITCH_EVERY (1 s).")


def experiment_report(settings: Settings, name: str, *, refresh: bool) -> dict[str, Any]:
    """The report of ``name``: computed from the lake while it runs, the one kept at its stop after."""
    from recpipe.adapters import Backends
    from recpipe.report.experiment import run
    from recpipe.vectors import experiments
    from recpipe.vectors.connect import connect

    with connect(Backends(settings).vectors()) as conn:
        experiment, kept = experiments.get(conn, name)
    if kept is not None:
        return kept
    if refresh:
        from recpipe.cli.etl import events_stage

        events_stage(settings, engine="duckdb", quiet=True)
    return run(Backends(settings).lake(), experiment)


@app.command("report")
def report(name: Name, refresh: Refresh = True, vectors_url: VectorsUrl = None, lake_url: LakeUrl = None,
           as_json: Json = False) -> None:
    """Lists shown, click-through, add-to-cart and purchase rates per variant with 95% intervals,
    and each variant's difference from the first with its 95% interval (a difference whose
    interval excludes 0 is a finding). A stopped experiment shows the report kept at its stop."""
    settings, _ = _settings(vectors_url, lake_url)
    show(experiment_report(settings, name, refresh=refresh), as_json)


@app.command("stop")
def stop(name: Name, refresh: Refresh = True, vectors_url: VectorsUrl = None, lake_url: LakeUrl = None,
         as_json: Json = False) -> None:
    """End an experiment: every shopper gets the serving model again, and its report (as of now)
    is kept with it."""
    import datetime as dt

    from recpipe.adapters import Backends
    from recpipe.report.experiment import run
    from recpipe.vectors import experiments
    from recpipe.vectors.connect import connect

    settings, db = _settings(vectors_url, lake_url)
    with connect(db) as conn:
        experiment, _ = experiments.get(conn, name)
        experiments.check_running(experiment)
        if refresh:
            from recpipe.cli.etl import events_stage

            events_stage(settings, engine="duckdb", quiet=True)
        at = dt.datetime.now(dt.UTC)
        doc = run(Backends(settings).lake(), experiment.model_copy(update={"stopped_at": at}))
        experiments.stop(conn, name, doc, at=at)
    if not as_json:
        console.print(f"experiment {escape(name)} stopped; its report is kept:")
    show(doc, as_json)


@app.command("list")
def list_(vectors_url: VectorsUrl = None, as_json: Json = False) -> None:
    """Every experiment, the running one first."""
    from recpipe.vectors import experiments
    from recpipe.vectors.connect import connect

    _, db = _settings(vectors_url)
    with connect(db) as conn:
        rows = experiments.all_(conn)
    docs = [{"name": r["name"], "variants": r["spec"]["variants"], "started_at": r["started_at"].isoformat(),
             "stopped_at": r["stopped_at"].isoformat() if r["stopped_at"] else None} for r in rows]
    if as_json:
        emit_json(docs)
        return
    table("experiments", ("name", "variants", "started", "stopped"),
          [(d["name"], ", ".join(f"{v['name']}={v['target']} ({v['share']:g}%)" for v in d["variants"]),
            d["started_at"][:19], (d["stopped_at"] or "running")[:19]) for d in docs])


def _rate(r: dict[str, float]) -> str:
    return f"{r['rate']:.2%} ({r['low']:.2%}–{r['high']:.2%})"


def _diff(d: dict[str, Any] | None) -> str:
    if d is None:
        return "control"
    mark = " *" if d["excludes_zero"] else ""
    return f"{d['difference']:+.2%} ({d['low']:+.2%} to {d['high']:+.2%}){mark}"


def show(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    if not doc.get("lines"):
        console.print(f"experiment {escape(doc.get('experiment', ''))}: no lists read yet for its variants "
                      "(deliver the stream or serve, then `recpipe etl events`)")
        return
    table(f"experiment {doc['experiment']} ({doc['started_at'][:19]} to {(doc['stopped_at'] or 'now')[:19]}): "
          "rates per list shown, 95% intervals; * the difference excludes 0",
          ("source", "variant", "shows", "lists", "click-through", "vs control", "add-to-cart", "vs control",
           "purchase", "vs control"),
          [(x["source"], x["variant"], x["target"], x["impressions"], _rate(x["ctr"]), _diff(x["ctr_vs_control"]),
            _rate(x["cart_rate"]), _diff(x["cart_vs_control"]), _rate(x["purchase_rate"]),
            _diff(x["purchase_vs_control"])) for x in doc["lines"]])
    for source, n in (doc.get("sessions_to_exclude_zero") or {}).items():
        said = f"after {n:,} sessions" if n else "not yet"
        console.print(f"{source}: the click-through difference excluded 0 {said}")
