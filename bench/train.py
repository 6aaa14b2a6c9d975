"""Training on a synthetic source of ~1,000,000 ratings: speed against a minimal dot-product
model, time to the best epoch, and quality against the generator's RMSE floors.

    python bench/train.py [--preset large] [--work DIR] [--name train]

One run: generate the shop (SQLite), build the training dataset (DuckDB ETL), then train
1. the content model (`recpipe train`), 2. the hybrid model (`recpipe train --hybrid`), and
3. the baseline: linear towers and a plain dot product (no hidden layer, no normalisation),
same 32 dimensions, same batch size, same loop and data, for samples/s only.

Targets (issue 4): content RMSE within 10% of the features-only floor, hybrid within 10% of
the identity-aware floor, both ≥ 15% better than the per-item mean.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report

from recpipe.adapters import open_artifacts, open_lake, open_source
from recpipe.etl.publish import run_etl
from recpipe.source.generate import PRESETS, generate_shop
from recpipe.source.load import write_shop
from recpipe.training.dataset import read_ratings, split
from recpipe.training.fit import FitOptions, fit
from recpipe.training.model import TwoTower, torch
from recpipe.training.pipeline import TrainOptions, prepare, train


class DotProduct(TwoTower):
    """The baseline: linear towers, raw dot product."""

    def __init__(self, user_width: int, item_width: int, dim: int) -> None:
        super().__init__(user_width, item_width, dim=dim, hidden=())

    @staticmethod
    def _embed(tower, table, x, ids):  # type: ignore[no-untyped-def,override]
        return tower(x)


def baseline_speed(lake: Any, options: FitOptions, epochs: int = 2) -> float:
    data = read_ratings(lake)
    rows = split(len(data), seed=options.seed)
    p = prepare(data, rows)
    torch.manual_seed(options.seed)
    model = DotProduct(p.xu.shape[1], p.xi.shape[1], options.dim)
    result = fit(model, p.inputs, rows.train, rows.validation,
                 FitOptions(**{**options.to_json(), "hidden": (), "max_epochs": epochs, "patience": epochs + 1}))
    return result.samples_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large", choices=list(PRESETS))
    parser.add_argument("--work", type=Path, default=None, help="Working directory (default: a temp dir).")
    parser.add_argument("--name", default="train", help="Results file name under bench/results/.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-train-"))
    lake_dir = work / "lake"
    spec = PRESETS[args.preset]
    if not (lake_dir / "ratings_ml_training" / "_manifest.json").is_file():
        t0 = time.perf_counter()
        shop = generate_shop(spec)
        db = open_source(f"sqlite:///{work / 'source.db'}")
        write_shop(db, shop, replace=True)
        run_etl(db, open_lake(str(lake_dir)), generator=shop.params)
        print(f"source + ETL: {time.perf_counter() - t0:.1f} s")
    lake = open_lake(str(lake_dir))
    options = FitOptions()
    runs: dict[str, dict[str, Any]] = {}
    for kind in ("content", "hybrid"):
        store, name = open_artifacts(str(work / f"artifacts-{kind}"))
        t0 = time.perf_counter()
        m = train(lake, store, name, TrainOptions(fit=options, hybrid=kind == "hybrid"))
        runs[kind] = {"wall_seconds": round(time.perf_counter() - t0, 1), "manifest": m}
        print(f"{kind}: {runs[kind]['wall_seconds']} s, RMSE {m['metrics']['rmse']:.4f}")
    base_sps = baseline_speed(lake, options)

    floors = runs["content"]["manifest"]["metrics"]["generator_floor"]
    item_mean = runs["content"]["manifest"]["metrics"]["baselines"]["item_mean"]["rmse"]
    pop = runs["content"]["manifest"]["metrics"]["baselines"]["popularity"]
    rows, doc_runs = [], {}
    for kind, floor_key in (("content", "features"), ("hybrid", "identity")):
        m = runs[kind]["manifest"]
        met, t = m["metrics"], m["training"]
        over_floor = met["rmse"] / floors[floor_key] - 1
        vs_item = 1 - met["rmse"] / item_mean
        rows.append((f"{kind} model", t["samples_per_second"], t["samples_per_second"] / base_sps,
                     t["seconds"]["to_best_epoch"], f"{t['best_epoch']}/{t['epochs']}", met["rmse"],
                     f"{floor_key} {floors[floor_key]:.4f} ({over_floor:+.1%})", f"{vs_item:.1%}",
                     met["recall_at_10"], met["ndcg_at_10"]))
        doc_runs[kind] = {"samples_per_second": t["samples_per_second"], "vs_dot_product": t["samples_per_second"] / base_sps,
                          "seconds_to_best_epoch": t["seconds"]["to_best_epoch"], "seconds_training": t["seconds"]["training"],
                          "seconds_read": t["seconds"]["read"], "wall_seconds": runs[kind]["wall_seconds"],
                          "best_epoch": t["best_epoch"], "epochs": t["epochs"], "metrics": met,
                          "rmse_over_floor": over_floor, "floor": floor_key,
                          "within_10pct_of_floor": over_floor <= 0.10, "better_than_item_mean": vs_item,
                          "at_least_15pct_better_than_item_mean": vs_item >= 0.15}
    rows.append(("dot-product baseline", base_sps, 1.0, "", "", "", "", "", "", ""))
    rows.append(("per-item mean", "", "", "", "", item_mean, "", "0.0%", "", ""))
    rows.append(("popularity", "", "", "", "", "", "", "", pop["recall_at_10"], pop["ndcg_at_10"]))
    counts = runs["content"]["manifest"]["counts"]
    report(args.name, f"training on {counts['ratings']:,} ratings ({counts['users']:,} customers, "
                      f"{counts['items']:,} products), batch {options.batch_size}, dim {options.dim}",
           ("model", "samples/s", "× dot product", "s to best epoch", "best/epochs", "test RMSE",
            "floor (RMSE over it)", "better than item mean", "Recall@10", "NDCG@10"), rows,
           {"preset": args.preset, "spec": runs["content"]["manifest"]["data"]["generator"]["spec"],
            "counts": counts, "options": options.to_json(), "dot_product_samples_per_second": base_sps,
            "floors": floors, "item_mean_rmse": item_mean, "popularity": pop, "runs": doc_runs})


if __name__ == "__main__":
    main()
