"""``recpipe train``: the two-tower model on the lake's training dataset → ml-artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recpipe.cli.output import console, emit_json, err_console, table
from recpipe.config import Settings, load_settings

LakeUrl = Annotated[str | None, typer.Option("--lake-url", show_default=False,
                                             help="Lake with the training dataset; overrides RECPIPE_LAKE_URL.")]
ArtifactsUrl = Annotated[str | None, typer.Option("--artifacts-url", show_default=False,
                                                  help="Where to publish; overrides RECPIPE_ARTIFACTS_URL.")]


def train(
    hybrid: Annotated[bool, typer.Option(
        "--hybrid", help="Also learn an embedding per customer and per product id seen in training "
                         "(features stay the fallback for new ones); compared with the content-only model.")] = False,
    max_epochs: Annotated[int, typer.Option(min=1, help="Upper bound on epochs per phase.")] = 40,
    patience: Annotated[int, typer.Option(min=1, help="Stop after this many epochs without a better validation loss.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Ratings per mini-batch.")] = 1024,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 3e-3,
    seed: Annotated[int, typer.Option(help="Seed of the split, the initial weights and the batch order.")] = 42,
    lake_url: LakeUrl = None,
    artifacts_url: ArtifactsUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model manifest as JSON.")] = False,
) -> None:
    """Train the two-tower recommender and publish its artifacts (DESIGN.md §5).

    Reads <lake>/ratings_ml_training, holds out 10% of the ratings for validation (early
    stopping) and 10% for the test, fits the encoders on the training split, trains on the CPU
    (deterministic for a seed) and publishes embeddings/, model/ and scalers/ to the artifacts
    URL in one step. Ends with the held-out evaluation against the baselines.
    """
    from recpipe.training.fit import FitOptions
    from recpipe.training.pipeline import TrainOptions

    settings = load_settings({"lake_url": lake_url, "artifacts_url": artifacts_url})
    options = TrainOptions(fit=FitOptions(batch_size=batch_size, learning_rate=learning_rate,
                                          max_epochs=max_epochs, patience=patience, seed=seed), hybrid=hybrid)
    manifest = run_training(settings, options, quiet=as_json)
    if as_json:
        emit_json(manifest)
    else:
        print_evaluation(manifest)


def run_training(settings: Settings, options: Any = None, *, quiet: bool = False) -> dict[str, Any]:
    """Train with progress; used by the CLI and the demo."""
    from recpipe.adapters import open_artifacts, open_lake
    from recpipe.training.pipeline import train as train_model

    lake = open_lake(settings.lake_url)
    store, name = open_artifacts(settings.artifacts_url)
    with _progress(quiet) as progress:
        return train_model(lake, store, name, options, progress)


class _Bars:
    """Rich progress for ``training.pipeline.Progress``: a status line, a bar per epoch."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task, self.samples, self.max_epochs, self.name = progress, None, 0, 0, ""
        self.step = progress.add_task("", total=None)

    def status(self, text: str) -> None:
        self.progress.update(self.step, description=text)

    def phase(self, name: str, samples_per_epoch: int, max_epochs: int) -> None:
        self.name, self.samples, self.max_epochs = name, samples_per_epoch, max_epochs
        self.progress.update(self.step, description=f"training the {name} model", visible=True)
        self._new_bar(1)

    def _new_bar(self, epoch: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"{self.name} epoch {epoch}/{self.max_epochs}", total=self.samples)

    def batch(self, samples: int) -> None:
        self.progress.advance(self.task, samples)

    def epoch(self, e: Any) -> None:
        self.progress.console.print(f"{e.phase} epoch {e.epoch:>2}: train RMSE {2 * e.train_loss ** 0.5:.4f}, "
                                    f"validation RMSE {2 * e.val_loss ** 0.5:.4f} ({e.seconds:.1f} s)")
        self._new_bar(e.epoch + 1)


@contextmanager
def _progress(quiet: bool) -> Iterator[Any]:
    if quiet:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("ratings"), TimeElapsedColumn(), console=err_console, transient=True) as p:
        yield _Bars(p)


def print_evaluation(m: dict[str, Any]) -> None:
    """The held-out comparison: the model, its variants, the baselines and the floors."""
    metrics = m["metrics"]
    base = metrics["baselines"]

    def row(name: str, d: dict[str, Any] | None, note: str = "") -> tuple[Any, ...]:
        d = d or {}
        return (name, d.get("rmse"), d.get("mae"), d.get("recall_at_10"), d.get("ndcg_at_10"), note)

    rows = [row(f"{m['kind']} model", metrics, "this model")]
    if "content_only" in metrics:
        rows.append(row("content-only model", metrics["content_only"], "first phase of --hybrid"))
        rows.append(row("hybrid, features only", metrics.get("features_fallback"), "what a new customer/product gets"))
    rows += [row("global mean", base["global_mean"], "baseline"), row("per-item mean", base["item_mean"], "baseline"),
             row("popularity", base["popularity"], "baseline (ranking)")]
    floors = metrics.get("generator_floor")
    if floors:
        rows.append(row("floor: features only", {"rmse": floors["features"]}, "best possible from features (generator)"))
        rows.append(row("floor: identity-aware", {"rmse": floors["identity"]}, "best possible knowing ids (generator)"))
    t = m["training"]
    table(f"held-out evaluation: {m['counts']['test']:,} ratings, ranking over "
          f"{metrics.get('users') or 0:,} customers", ("", "RMSE", "MAE", "Recall@10", "NDCG@10", ""), rows)
    console.print(f"model {m['model_version']} ({m['kind']}): best epoch {t['best_epoch']} of {t['epochs']}, "
                  f"{t['seconds']['to_best_epoch']:.1f} s to the best epoch, {t['samples_per_second']:,.0f} samples/s; "
                  f"numpy towers agree with torch to {t['numpy_agreement']['max_abs_diff']:.1e}")
