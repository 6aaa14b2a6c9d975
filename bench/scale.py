"""Scale (issue 27): the whole batch path at 1M, 3M and 10M ratings on this machine.

    python bench/scale.py [--sizes 1m,3m,10m] [--stages train,...] [--work DIR] [--name scale]

For each size, each stage runs as the user runs it, `recpipe … --json` in its own process
(wall time and peak memory of the process tree, sampled every 100 ms): `source init` (a
synthetic shop of that size in SQLite), `etl run` (DuckDB), `train` (the retrieval model and
its baselines) and `vectors load` (the embedded PostgreSQL). The baseline is the 1M size in the
same run: each stage's time and memory as a ratio to it. The ranking figures (Recall@10 with
its 95% interval, against popularity and EASE, and the oracle) come from each model's manifest.

Then the layouts: `raw` reads the source's tables and nothing else (the ceiling an ETL can
reach), `etl_compact` is `etl run --layout compact` into a second lake, and `read` /
`read_compact` are training's reader (``training.reading.read_ratings``) on each lake.

A stage that fails is recorded with its error and that size stops there. ``--stages`` runs
some stages again on the shops a ``--work`` folder already holds (say ``train`` after a change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import report, run_measured

SIZES = {"1m": (65_000, 2_000), "3m": (195_000, 3_000), "10m": (650_000, 5_000)}  # customers, products
STAGES = ("source", "etl", "train", "vectors", "raw", "etl_compact", "read", "read_compact")
RAW = """import json, sys, time
from recpipe.adapters import Backends
from recpipe.config import load_settings
from recpipe.contracts.dataset import SOURCE_COLUMNS
from recpipe.source.read import stream
db = Backends(load_settings({})).source()
started = time.perf_counter()
rows = {t: sum(b.num_rows for b in stream(db, t)) for t in SOURCE_COLUMNS}
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
"""
READ = """import json, sys, time
from recpipe.adapters import open_lake
from recpipe.training.reading import read_ratings
started = time.perf_counter()
data = read_ratings(open_lake(sys.argv[1]))
print(json.dumps({"rows": len(data), "seconds": time.perf_counter() - started}))
"""


def stage(name: str, customers: int, products: int, home: Path) -> list[str]:
    python = [sys.executable, "-c"]
    return {"source": ["source", "init", "--customers", str(customers), "--products", str(products), "--seed", "7",
                       "--replace"],
            "etl": ["etl", "run", "--no-events"], "train": ["train"], "vectors": ["vectors", "load"],
            "raw": [*python, RAW],
            "etl_compact": ["etl", "run", "--no-events", "--layout", "compact", "--lake-url", str(home / "compact")],
            "read": [*python, READ, str(home / "lake")], "read_compact": [*python, READ, str(home / "compact")]}[name]


def run_size(size: str, work: Path, stages: tuple[str, ...] = STAGES) -> dict[str, Any]:
    customers, products = SIZES[size]
    env = {**os.environ, "RECPIPE_HOME": str(work / size / "home"), "COLUMNS": "200"}
    out: dict[str, Any] = {"customers": customers, "products": products, "stages": {}}
    home = work / size / "home"
    for name in stages:
        command = stage(name, customers, products, home)
        argv = command if command[0] == sys.executable else [sys.executable, "-m", "recpipe", *command, "--json"]
        print(f"{size}: {name}", flush=True)
        try:
            seconds, peak, stdout = run_measured(argv, env)
        except SystemExit as failed:
            out["stages"][name] = {"failed": str(failed)[-2000:]}
            break
        doc = json.loads(stdout)
        out["stages"][name] = {"seconds": round(seconds, 1), "peak_gib": round(peak / 2**30, 2)}
        if name == "source":
            out["ratings"] = doc.get("counts", {}).get("ratings")
        if name == "train":
            m, base = doc["metrics"], doc["metrics"]["baselines"]
            out["ranking"] = {"recall_at_10": m["recall_at_10"], "ci95": (m.get("ci95") or {}).get("recall_at_10"),
                              "sample": (m.get("protocol") or {}).get("sample"),
                              **{k: (base.get(k) or {}).get("recall_at_10") for k in ("popularity", "ease", "oracle")}}
            out["train_seconds"] = doc["training"].get("seconds")
        if name in ("raw", "read", "read_compact"):
            out["stages"][name]["inner_seconds"] = round(doc["seconds"], 1)
        if name in ("etl", "etl_compact"):
            out["stages"][name]["files"] = doc.get("files")
        print(f"  {seconds:,.0f} s, peak {peak / 2**30:.2f} GiB", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,3m,10m")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--name", default="scale")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-scale-"))
    sizes = args.sizes.split(",")
    stages = tuple(args.stages.split(","))
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}: use {', '.join(STAGES)}")
    got = {size: run_size(size, work, stages) for size in sizes}
    base = got.get("1m", {}).get("stages", {})
    rows = []
    for size, r in got.items():
        for name in STAGES:
            s = r["stages"].get(name)
            if s is None:
                continue
            if "failed" in s:
                rows.append((size, name, "failed", "", "", s["failed"].splitlines()[-1][:80]))
                continue
            b = base.get(name) or {}
            raw = (r["stages"].get("raw") or {}).get("inner_seconds")
            detail = (f"{s['files']:,} files" + (f", raw read ÷ this: {raw / s['seconds']:.2f}" if raw else "")
                      if "files" in s else f"{s['inner_seconds']} s inside the process" if "inner_seconds" in s else "")
            rows.append((size, name, s["seconds"], s["peak_gib"],
                         f"{s['seconds'] / b['seconds']:.2f}× / {s['peak_gib'] / b['peak_gib']:.2f}×" if b.get("seconds") else "",
                         detail))
        if "ranking" in r:
            k = r["ranking"]
            low, high = k.get("ci95") or (0.0, 0.0)
            rows.append((size, "Recall@10", round(k["recall_at_10"], 3), "", "",
                         f"95% {low:.3f}-{high:.3f}; popularity {k['popularity'] or 0:.3f}, EASE {k['ease'] or 0:.3f}, "
                         f"oracle {k['oracle'] or 0:.3f}"))
    report(args.name, "the batch path by size (2 cores)", ("size", "stage", "seconds", "peak GiB",
                                                           "÷ 1M (time / memory)", "detail"), rows,
           {"sizes": got})


if __name__ == "__main__":
    main()
