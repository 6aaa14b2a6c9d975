"""``recpipe train``: the two-tower model on the lake's training dataset → ml-artifacts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recpipe.cli.output import bars, console, emit_json, table
from recpipe.config import Settings, load_settings
from recpipe.contracts.artifacts import ModelManifest

LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake with the training dataset; overrides RECPIPE_LAKE_URL.")]
ArtifactsUrl = Annotated[str | None, typer.Option("--artifacts-url", show_default=False,
                                                  help="Where to publish; overrides RECPIPE_ARTIFACTS_URL.")]


def train(
    objective: Annotated[str, typer.Option(
        help="retrieval: learn which products customers choose (every purchase is a positive; in-batch "
             "softmax with the logQ correction), judged by Recall@10 against popularity and EASE. "
             "rating: the seed's model, regressing the rating of bought products, judged by RMSE.")] = "retrieval",
    hybrid: Annotated[bool, typer.Option(
        "--hybrid", help="With --objective rating: also learn an embedding per customer and product id seen in "
                         "training (features stay the fallback for new ones). Retrieval always has them.")] = False,
    refit: Annotated[bool, typer.Option(
        help="Retrieval: after the evaluation has chosen the epochs, publish a model refit on every "
             "interaction (--no-refit publishes the evaluated model, trained on the training split).")] = True,
    rating_baseline: Annotated[bool | None, typer.Option(
        "--rating-baseline/--no-rating-baseline", show_default=False,
        help="Retrieval: also train the rating model on the same split and rank with it, as a baseline. "
             "Default: on up to 500,000 interactions (above, it costs more than the model).")] = None,
    events: Annotated[bool, typer.Option(
        "--events/--no-events", help="Also learn from the lake's events (`recpipe etl events`): each product a known "
                                     "customer browsed, carted or bought on the stream and did not rate is one more "
                                     "interaction, the newest in their history.")] = True,
    max_epochs: Annotated[int, typer.Option(min=1, help="Upper bound on epochs per phase.")] = 40,
    patience: Annotated[int, typer.Option(min=1, help="Stop after this many epochs without a better validation "
                                                      "score (retrieval: Recall@10; rating: loss).")] = 3,
    batch_size: Annotated[int | None, typer.Option(
        min=2, show_default=False, help="Interactions per mini-batch (retrieval: they are each other's negatives). "
                                        "Default: retrieval about 64 steps per epoch (256-2048), rating 1024.")] = None,
    learning_rate: Annotated[float | None, typer.Option(
        min=0.0, show_default=False, help="Adam learning rate. Default: 0.001 for retrieval, 0.003 for rating.")] = None,
    temperature: Annotated[float, typer.Option(min=1e-3, help="Retrieval: softmax temperature on the cosine.")] = 0.2,
    id_weight_decay: Annotated[float, typer.Option(
        min=0.0, help="Retrieval: AdamW weight decay of the customer and product id embeddings "
                      "(higher holds rarely seen ids closer to their features).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the split, the initial weights and the batch order.")] = 42,
    lake_url: LakeUrl = None,
    artifacts_url: ArtifactsUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model manifest as JSON.")] = False,
) -> None:
    """Train the two-tower recommender and publish its artifacts.

    Reads <lake>/ratings_ml_training. Retrieval (default): holds out 5% of the customers whole
    (cold start) and, of everyone else, 20% of their purchases for the test and 10% for early
    stopping; evaluates against popularity, EASE, the rating model and (on synthetic shops) the
    generator's oracle; then refits on every purchase. Rating: a random 80/10/10 split of the
    ratings, judged by RMSE. Trains on the CPU (deterministic for a seed) and publishes
    embeddings/, model/ and scalers/ to the artifacts URL in one step, then prints the
    held-out evaluation.
    """
    from recpipe.training.fit import FitOptions
    from recpipe.training.pipeline import TrainOptions

    settings = load_settings({"lake_url": lake_url, "artifacts_url": artifacts_url})
    options = TrainOptions(fit=FitOptions(batch_size=batch_size, learning_rate=learning_rate, max_epochs=max_epochs,
                                          patience=patience, temperature=temperature,
                                          id_weight_decay=id_weight_decay, seed=seed),
                           objective=objective, hybrid=hybrid, refit=refit, rating_baseline=rating_baseline,
                           events=events)
    options.check()
    manifest = training_stage(settings, options, quiet=as_json)
    if as_json:
        emit_json(manifest.to_json())
    else:
        print_evaluation(manifest)


def training_stage(settings: Settings, options: Any = None, *, quiet: bool = False) -> ModelManifest:
    """``training.pipeline.run`` with the settings and progress bars (the CLI and the demo)."""
    from recpipe.adapters import Backends
    from recpipe.training.pipeline import run

    lake = Backends(settings).lake()
    store, name = Backends(settings).artifacts()
    with bars(quiet=quiet, transient=True) as progress:
        return run(lake, store, name, options, progress)


def print_evaluation(m: ModelManifest) -> None:
    """The held-out comparison: the model, its variants, the baselines and the floors."""
    if m.objective == "retrieval":
        _print_ranking(m)
    else:
        _print_rating(m)
    t = m.training
    published = t.get("published")
    refit = f"; published vectors: {published['trained_on']}" if published else ""
    used = t.get("events") or {}
    if used.get("rows"):
        console.print(f"events: {used['added']:,} interactions added from {used['rows']:,} event rows of "
                      f"{used['hours']:,} delivery hour(s) ({', '.join(f'{k} {v:,}' for k, v in used['by_kind'].items())}"
                      f"); {used['already_rated']:,} already rated, {used['visitors']:,} visitors', "
                      f"{used['unknown_customers'] + used['unknown_products']:,} of unknown customers or products",
                      highlight=False)
    console.print(f"model {m.model_version} ({m.kind}): best epoch {t['best_epoch']} of {t['epochs']}, "
                  f"{t['seconds']['to_best_epoch']:.1f} s to the best epoch, {t['samples_per_second']:,.0f} samples/s; "
                  f"numpy towers agree with torch to {t['numpy_agreement']['max_abs_diff']:.1e}{refit}")


def headline(m: ModelManifest) -> str:
    """One line on how good the model is, for summaries."""
    metrics = m.metrics
    if m.objective == "retrieval":
        pop = metrics["baselines"]["popularity"]
        return (f"held-out Recall@10 {metrics['recall_at_10']:.3f} (popularity {pop['recall_at_10']:.3f}; "
                f"cold start {metrics['cold_start']['recall_at_10']:.3f})")
    return f"held-out RMSE {metrics['rmse']:.3f} (per-item mean {metrics['baselines']['item_mean']['rmse']:.3f})"


RANKERS = (("popularity", "most bought first"), ("ease", "item-item model (needs a history)"),
           ("rating_model", "the seed's objective, same split"), ("oracle", "the generator's truth"))


def _print_ranking(m: ModelManifest) -> None:
    metrics = m.metrics

    def row(name: str, d: dict[str, Any] | None, note: str) -> tuple[Any, ...]:
        d = d or {}
        if "skipped" in d:
            return (name, None, None, None, None, None, f"not run: {d['skipped']}")
        cold = d.get("cold_start") or {}
        return (name, d.get("recall_at_10"), d.get("ndcg_at_10"), d.get("coverage"), cold.get("recall_at_10"),
                cold.get("ndcg_at_10"), note)

    rows = [row("retrieval model", metrics, "this model")]
    rows += [row(name, metrics["baselines"][name], note) for name, note in RANKERS if name in metrics["baselines"]]
    sample = (metrics.get("protocol") or {}).get("sample") or {}
    cold = (metrics.get("cold_start") or {}).get("users", 0)
    if sample.get("sampled"):
        who = (f"a seeded sample of {metrics.get('users') or 0:,} of {sample['test_customers_of']:,} customers and "
               f"{cold:,} of {sample['cold_start_customers_of']:,} cold-start customers (features only)")
    else:
        who = (f"{metrics.get('users') or 0:,} customers' {m.counts.get('test', 0):,} test purchases, "
               f"{cold:,} cold-start customers (features only)")
    low, high = (metrics.get("ci95") or {}).get("recall_at_10") or (None, None)
    margin = f"; the model's Recall@10 95% interval {low:.3f}-{high:.3f}" if low is not None else ""
    table(f"held-out ranking: {who}{margin}",
          ("", "Recall@10", "NDCG@10", "coverage", "cold Recall@10", "cold NDCG@10", ""), rows)


def _print_rating(m: ModelManifest) -> None:
    metrics = m.metrics
    base = metrics["baselines"]

    def row(name: str, d: dict[str, Any] | None, note: str = "") -> tuple[Any, ...]:
        d = d or {}
        return (name, d.get("rmse"), d.get("mae"), d.get("recall_at_10"), d.get("ndcg_at_10"), note)

    rows = [row(f"{m.kind} model", metrics, "this model")]
    if "content_only" in metrics:
        rows.append(row("content-only model", metrics["content_only"], "first phase of --hybrid"))
        rows.append(row("hybrid, features only", metrics.get("features_fallback"), "what a new customer/product gets"))
    rows += [row("global mean", base["global_mean"], "baseline"), row("per-item mean", base["item_mean"], "baseline"),
             row("popularity", base["popularity"], "baseline (ranking)")]
    floors = metrics.get("generator_floor")
    if floors:
        rows.append(row("floor: features only", {"rmse": floors["features"]}, "best possible from features (generator)"))
        rows.append(row("floor: identity-aware", {"rmse": floors["identity"]}, "best possible knowing ids (generator)"))
    table(f"held-out evaluation: {m.counts['test']:,} ratings, ranking over "
          f"{metrics.get('users') or 0:,} customers", ("", "RMSE", "MAE", "Recall@10", "NDCG@10", ""), rows)
