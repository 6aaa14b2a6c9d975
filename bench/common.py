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
