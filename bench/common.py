"""What every benchmark shares: machine facts, timing, and writing bench/results/<name>.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recpipe.progress import Silent

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # for tests.support (private MariaDB)
console = Console(width=None if sys.stdout.isatty() else 200)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform()}


@contextmanager
def timer() -> Any:
    box = {"seconds": 0.0}
    start = time.perf_counter()
    yield box
    box["seconds"] = time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_measured(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, int, str]:
    """Run a command; return (seconds, peak resident bytes of its whole process tree sampled
    every 100 ms, stdout). Exits with its stderr when it fails."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    return seconds, peak, out


def report(name: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
           document: dict[str, Any]) -> Path:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="right" if c != columns[0] else "left")
    for row in rows:
        table.add_row(*(f"{v:,.0f}" if isinstance(v, float) and v >= 100 else
                        f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                        for v in row))
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "machine": machine(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **document}
    path.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"wrote {path.relative_to(ROOT)}")
    return path


class Printed(Silent):
    """Progress that prints each status line (a benchmark's log)."""

    def status(self, text: str) -> None:
        print(f"  {text}", flush=True)


def small_shop(work: Path) -> Any:
    """The "small" shop (2,000 customers, 200 products) under ``work/home``, through recpipe
    itself (source, DuckDB ETL, train, vectors load into the embedded PostgreSQL), built once
    per work directory; its settings."""
    from recpipe.adapters import open_artifacts, open_lake, open_source, open_vectors
    from recpipe.config import load_settings
    from recpipe.etl.pipeline import run as run_etl
    from recpipe.source.generate import PRESETS
    from recpipe.source.load import read_sidecar, sidecar_path
    from recpipe.source.pipeline import run as make_shop
    from recpipe.training.pipeline import TrainOptions
    from recpipe.training.pipeline import run as train
    from recpipe.vectors.pipeline import run as load_vectors

    settings = load_settings(environ={"RECPIPE_HOME": str(work / "home")}, env_file=None)
    if not (work / "ready").exists():
        t0 = time.perf_counter()
        db = open_source(settings.source_url)
        make_shop(db, PRESETS["small"], sidecar=sidecar_path(settings.home, db), replace=True)
        lake = open_lake(settings.lake_url)
        run_etl(db, lake, generator=read_sidecar(sidecar_path(settings.home, db)))
        store, name = open_artifacts(settings.artifacts_url)
        train(lake, store, name, TrainOptions(rating_baseline=False))
        load_vectors(open_vectors(settings.vectors_url), store, name, source=db)
        (work / "ready").touch()
        print(f"set-up in {time.perf_counter() - t0:.0f} s", flush=True)
    return settings


def shoppers(settings: Any, seed: int = 3) -> Any:
    """The shop's simulated shoppers (``streaming.produce.Shoppers``), walking its ground truth."""
    from recpipe.adapters import open_source
    from recpipe.source.load import read_sidecar, sidecar_path
    from recpipe.streaming.produce import Shoppers

    db = open_source(settings.source_url)
    return Shoppers.from_source(db, read_sidecar(sidecar_path(settings.home, db)), seed=seed)
