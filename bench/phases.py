"""Where `train`'s memory goes (issue 27): the peak resident memory of each phase, per size.

    python bench/phases.py [--sizes 1m,3m,10m] [--work DIR] [--epochs 1] [--name phases]

Runs on the shops ``bench/scale.py --stages source,etl --work DIR`` made. For each size, one
process runs ``training.pipeline.run`` (the retrieval model with the embedded defaults, at
most ``--epochs`` epochs so that every phase comes round quickly) while a thread reads its
resident memory from ``/proc/self/statm`` every 20 ms and charges it to the phase the progress
reports (its status with the numbers taken out: "training the retrieval model: epoch # of at
most #"), with where the main thread was at each phase's peak (its recpipe frames, innermost
first: ``where`` in the results), and what held it then (``held``, in MB: glibc's blocks mapped
on their own, its heap in use and free, from ``mallinfo2``, and Arrow's pool). The baseline is
the first size in the same run: each phase's peak as a ratio to its
peak there; last, each process's high-water mark (the kernel's ``VmHWM``: a spike shorter
than a sample is in it). Only growth with the data moves the ratio; the memory every size pays (torch,
Arrow, the fixed-size evaluation) is what the first size's figures show.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import report

from recpipe.progress import Silent

SIZES = ("1m", "3m", "10m")
PAGE = os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ["arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"]]


def _mallinfo2() -> Any:
    """glibc's ``mallinfo2`` (2.33 and later), or None where the C library has none."""
    from recpipe.training.memory import glibc

    call = getattr(glibc(), "mallinfo2", None)
    if call is not None:
        call.restype = _MallInfo2
    return call


MALLINFO2 = _mallinfo2()


def held() -> dict[str, float]:
    """What holds the process's memory now, in MB: glibc's blocks mapped on their own (at or
    above its mmap threshold: the big arrays and tensors), its heap in use (Python objects,
    small arrays) and free in it (resident where touched and not trimmed), and Arrow's pool."""
    import pyarrow as pa

    out = {"arrow_pool_mb": round(pa.default_memory_pool().bytes_allocated() / 2**20, 1)}
    if MALLINFO2 is not None:
        info = MALLINFO2()
        out |= {"mapped_blocks_mb": round(info.hblkhd / 2**20, 1), "heap_in_use_mb": round(info.uordblks / 2**20, 1),
                "heap_free_mb": round(info.fordblks / 2**20, 1)}
    return out


class Phases(Silent):
    """A ``Progress`` that remembers the phase; ``sample`` charges resident memory to it (the
    phases in the order they came)."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.peaks: dict[str, float] = {}
        self.where: dict[str, str] = {}  # per phase: the main thread's recpipe frames at its peak
        self.held: dict[str, dict[str, float]] = {}  # per phase: what held the memory at its peak
        self.main = threading.main_thread().ident

    def status(self, text: str) -> None:
        # numbers, versions and locations out: "registering model #", "listing #"
        self.phase = re.sub(r" (from|to) #$", "", re.sub(r"\S*[\d/]\S*", "#", text))

    def sample(self) -> None:
        with open("/proc/self/statm", encoding="ascii") as f:
            gib = int(f.read().split()[1]) * PAGE / 2**30
        phase = self.phase
        if gib > self.peaks.get(phase, 0.0):
            self.peaks[phase] = gib
            self.where[phase] = self.stack()
            self.held[phase] = held()

    def stack(self) -> str:
        """Where the main thread is: its recpipe frames, innermost first ("module:line" each)."""
        frame = sys._current_frames().get(self.main)  # the only way to see another thread
        out = []
        while frame is not None:
            name = frame.f_code.co_filename
            if "recpipe" in name and "bench" not in name:
                out.append(f"{Path(name).stem}:{frame.f_lineno}")
            frame = frame.f_back
        return " < ".join(out[:6])


def one(epochs: int) -> dict[str, Any]:
    """Train once in this process (``RECPIPE_HOME`` names the shop); the peak of each phase."""
    from recpipe.adapters import Backends
    from recpipe.config import load_settings
    from recpipe.training.fit import FitOptions
    from recpipe.training.pipeline import TrainOptions, run

    phases = Phases()
    phases.sample()
    base = phases.peaks.pop("starting")
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(0.02):
            phases.sample()

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    settings = load_settings({})
    store, name = Backends(settings).artifacts()
    started = time.perf_counter()
    manifest = run(Backends(settings).lake(), store, name, TrainOptions(fit=FitOptions(max_epochs=epochs)), phases)
    done.set()
    thread.join()
    with open("/proc/self/status", encoding="ascii") as f:  # the kernel's high-water mark: what sampling missed
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20
    return {"seconds": round(time.perf_counter() - started, 1), "start_gib": round(base, 3),
            "interactions": manifest.counts["interactions"], "high_water_gib": round(hwm, 3),
            "phases": {p: round(peak, 3) for p, peak in phases.peaks.items()}, "where": phases.where,
            "held": phases.held}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--work", default=None, help="the folder bench/scale.py made the shops in (required)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--name", default="phases")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.epochs)))
        return
    if not args.work:
        raise SystemExit("--work: the folder `bench/scale.py --stages source,etl --work DIR` made the shops in")
    work = Path(args.work)
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size(s) {unknown}: use some of {', '.join(SIZES)}")
    results: dict[str, Any] = {"epochs": args.epochs, "sizes": {}}
    for size in sizes:
        home = work / size / "home"
        if not (home / "lake").exists():
            raise SystemExit(f"no shop in {home}: run `python bench/scale.py --sizes {size} "
                             f"--stages source,etl --work {work}` first")
        print(f"{size}: training with at most {args.epochs} epoch(s)", flush=True)
        env = {**os.environ, "RECPIPE_HOME": str(home)}
        done = subprocess.run([sys.executable, __file__, "--one", "--epochs", str(args.epochs)], env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{size}: training failed:\n{done.stderr[-3000:]}")
        results["sizes"][size] = json.loads(done.stdout.strip().splitlines()[-1])
    first = results["sizes"][sizes[0]]["phases"]
    rows = []
    for phase in dict.fromkeys(p for s in results["sizes"].values() for p in s["phases"]):
        peaks = [results["sizes"][s]["phases"].get(phase) for s in sizes]
        ratio = peaks[-1] / first[phase] if phase in first and peaks[-1] else None
        rows.append([phase[:70], *(f"{p:.2f}" if p else "-" for p in peaks), f"{ratio:.2f}x" if ratio else "-"])
    results["peak_gib"] = {s: max(r["phases"].values()) for s, r in results["sizes"].items()}
    hwm = [results["sizes"][s]["high_water_gib"] for s in sizes]
    rows.append(["the process's high-water mark (VmHWM)", *(f"{h:.2f}" for h in hwm), f"{hwm[-1] / hwm[0]:.2f}x"])
    report(args.name, "peak resident memory per phase (GiB)", ["phase", *sizes, f"{sizes[-1]} / {sizes[0]}"], rows,
           results)


if __name__ == "__main__":
    main()
