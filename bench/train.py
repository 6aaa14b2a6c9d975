"""Training: does the retrieval model rank better than strong baselines, on shops of three shapes?

    python bench/train.py [--shops small,dense,large] [--work DIR] [--name train]

For each shop: generate it (SQLite), build the training dataset (DuckDB ETL), then run, each
as `recpipe train --json` in its own process (wall time and peak memory of the process tree):
1. the retrieval model (the default): its held-out Recall@10 / NDCG@10 / coverage, for warm
   and cold-start customers, beside the baselines the same run fits on the same split —
   popularity, EASE, the rating objective's model — and the generator's oracle;
2. the rating objective (`--objective rating`): RMSE against the per-item mean and the floors.

Shops: `small` is the demo's default; `large` the ~1,000,000-rating preset; `dense` is shaped
like the public MovieLens-100k data (950 customers with ~100 purchases each over 1,700
products), a different regime from the shops above (many purchases per customer, few customers).

Targets (issue 11): Recall@10 ≥ 1.5 × popularity and ≥ 0.9 × EASE and ≥ 0.8 × the oracle;
cold-start Recall@10 ≥ popularity's; training to the best epoch ≤ 3 minutes at 1M ratings.
Issue 22 (``<name>-next-item.json``): next-item Hit@10, known customers ≥ 1.3 × the model
without the session and ≥ 1.2 × the best of EASE and session-kNN; new visitors ≥ 2.5 × their
features alone; ≥ 0.8 × the generator's next-item oracle. The last column is the oracle against
itself without the session (the choice model alone): what knowing the session adds at best.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report, run_measured

from recpipe.adapters import open_lake, open_source
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import PRESETS, ShopSpec, generate_shop
from recpipe.source.load import write_shop

SHOPS = {
    "small": PRESETS["small"],
    "dense": ShopSpec(customers=950, products=1_700, orders_per_customer=10, lines_per_order=10),
    "large": PRESETS["large"],
}


def build(shop: str, work: Path) -> Path:
    lake = work / shop / "lake"
    if not (lake / "ratings_ml_training" / "_manifest.json").is_file():
        t0 = time.perf_counter()
        generated = generate_shop(SHOPS[shop])
        db = open_source(f"sqlite:///{work / shop / 'source.db'}")
        write_shop(db, generated, replace=True)
        run_etl(db, open_lake(str(lake)), generator=generated.params)
        print(f"{shop}: source + ETL {time.perf_counter() - t0:.1f} s", flush=True)
    return lake


def train(lake: Path, out: Path, *args: str) -> tuple[float, int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    env.update({"RECPIPE_LAKE_URL": str(lake), "RECPIPE_ARTIFACTS_URL": str(out),
                "RECPIPE_HOME": str(lake.parent / "home")})
    seconds, peak, stdout = run_measured([sys.executable, "-m", "recpipe", "train", "--json", *args], env)
    return seconds, peak, json.loads(stdout)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shops", default="small,dense,large", help="Comma-separated: " + ", ".join(SHOPS))
    parser.add_argument("--work", type=Path, default=None, help="Working directory (default: a temp dir).")
    parser.add_argument("--name", default="train", help="Results file name under bench/results/.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-train-"))
    rows, results, next_rows = [], {}, []
    for shop in args.shops.split(","):
        lake = build(shop, work)
        seconds, peak, m = train(lake, work / shop / "retrieval")
        print(f"{shop}: retrieval {seconds:.1f} s", flush=True)
        r_seconds, r_peak, r = train(lake, work / shop / "rating", "--objective", "rating")
        print(f"{shop}: rating {r_seconds:.1f} s", flush=True)
        met, base, t = m["metrics"], m["metrics"]["baselines"], m["training"]
        recall = {name: base[name].get("recall_at_10") for name in ("popularity", "ease", "rating_model", "oracle")}
        cold = {name: (base[name].get("cold_start") or {}).get("recall_at_10") for name in recall}
        entry = {
            "counts": m["counts"], "spec": m["data"]["generator"]["spec"],
            "retrieval": {"metrics": met, "wall_seconds": round(seconds, 1), "peak_rss_bytes": peak,
                          "seconds_to_best_epoch": t["seconds"]["to_best_epoch"], "best_epoch": t["best_epoch"],
                          "epochs": t["epochs"], "samples_per_second": t["samples_per_second"],
                          "published": t["published"], "options": t["options"]},
            "ratios": {"vs_popularity": ratio(met["recall_at_10"], recall["popularity"]),
                       "vs_ease": ratio(met["recall_at_10"], recall["ease"]),
                       "vs_rating_model": ratio(met["recall_at_10"], recall["rating_model"]),
                       "vs_oracle": ratio(met["recall_at_10"], recall["oracle"]),
                       "cold_start_vs_popularity": ratio(met["cold_start"]["recall_at_10"], cold["popularity"])},
            "rating": {"metrics": r["metrics"], "wall_seconds": round(r_seconds, 1), "peak_rss_bytes": r_peak,
                       "seconds_to_best_epoch": r["training"]["seconds"]["to_best_epoch"]},
        }
        nxt = met.get("next_item", {})
        entry["next_item"] = nxt
        results[shop] = entry
        for who in ("known_customers", "new_visitors"):
            f = nxt.get(who)
            if f:
                hits = {k: f[k].get("hit_at_10") for k in ("session", "without_session", "popularity", "ease",
                                                          "session_knn", "oracle") if isinstance(f.get(k), dict)}
                next_rows.append((shop, who.replace("_", " "), *(hits.get(k) for k in (
                    "session", "without_session", "popularity", "ease", "session_knn", "oracle")),
                    f"{f['ratios']['vs_without_session']} / {f['ratios']['vs_best_of_ease_and_session_knn']}"
                    f" / {f['ratios'].get('vs_oracle')}", f['ratios'].get('oracle_vs_oracle_without_session')))
        q = entry["ratios"]
        c = m["counts"]
        rows.append((f"{shop} ({c['ratings']:,} ratings, {c['users']:,} × {c['items']:,})",
                     met["recall_at_10"], recall["popularity"], recall["ease"], recall["rating_model"], recall["oracle"],
                     f"{q['vs_popularity']:.2f} / {q['vs_ease']:.2f} / {q['vs_oracle']:.2f}",
                     f"{met['cold_start']['recall_at_10']:.3f} vs {cold['popularity']:.3f}",
                     met["coverage"], t["seconds"]["to_best_epoch"], seconds, f"{peak / 2**30:.2f}",
                     f"{r['metrics']['rmse']:.4f} (floor {r['metrics']['generator_floor']['features']:.4f}, "
                     f"item mean {r['metrics']['baselines']['item_mean']['rmse']:.4f})"))
    report(args.name, "retrieval model against its baselines, held-out Recall@10 (same split, same run)",
           ("shop", "model", "popularity", "EASE", "rating model", "oracle", "× pop / EASE / oracle",
            "cold start: model vs pop", "coverage", "s to best epoch", "train s (all)", "peak GiB", "rating objective RMSE"),
           rows, {"shops": results})
    report(f"{args.name}-next-item", "next item (issue 22): Hit@10 of each customer's latest product from the 20 before it",
           ("shop", "who", "session model", "without session", "popularity", "EASE", "session-kNN", "oracle",
            "× without / best baseline / oracle", "oracle × itself without"), next_rows, {"shops": {k: v["next_item"] for k, v in results.items()}})


if __name__ == "__main__":
    main()
