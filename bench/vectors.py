"""The vector database at 1,000,000 items × 32 dimensions (synthetic, clustered): HNSW
recall@10 against exact search in numpy, queries/s for one client and batched, p50/p99
latency, index build time, and the ef_search/recall curve.

    python bench/vectors.py [--items 1000000] [--queries 1000] [--work DIR] [--name vectors]

Everything goes through recpipe's own code: the artifacts' CSV format, `load_vectors` (binary
COPY, HNSW build, atomic switch) into the embedded PostgreSQL 16 + pgvector, and the
`VectorQueries` API the service uses. Queries are new points drawn from the same clusters.
Baseline in the same run: exact top-10 in numpy (one query at a time, and all at once).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from common import Printed, report

from recpipe.adapters import open_artifacts, open_vectors
from recpipe.contracts.vectors import HNSW
from recpipe.training.artifacts import (
    ITEM_ATTRIBUTES,
    ITEM_EMBEDDINGS,
    USER_EMBEDDINGS,
    write_embeddings,
    write_item_attributes,
)
from recpipe.vectors.pipeline import run as load_vectors
from recpipe.vectors.query import VectorQueries

K = 10
LINES = ("Classic Cars", "Motorcycles", "Planes", "Ships", "Trains", "Trucks and Buses", "Vintage Cars")


class Clusters:
    """A mixture of clusters, each spread along its own few directions (a low intrinsic
    dimension, as learned embeddings have) plus a little isotropic noise, then normalised."""

    def __init__(self, rng: np.random.Generator, clusters: int, latent: int, spread: float, noise: float) -> None:
        self.centers = rng.normal(size=(clusters, 32))
        self.bases = rng.normal(size=(clusters, latent, 32)) / np.sqrt(32) * np.sqrt(32 / latent)
        self.spread, self.noise = spread, noise

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.integers(0, len(self.centers), n)
        out = np.empty((n, 32), dtype=np.float64)
        for c in range(len(self.centers)):
            rows = np.flatnonzero(which == c)
            z = rng.normal(size=(len(rows), self.bases.shape[1]))
            out[rows] = self.centers[c] + self.spread * (z @ self.bases[c])
        out += self.noise * rng.normal(size=out.shape)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def exact_top(items: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), K), dtype=np.int64)
    for lo in range(0, len(queries), 100):
        scores = queries[lo:lo + 100] @ items.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out[lo:lo + 100] = np.take_along_axis(top, order, 1)
    return out


def recall(found: list[list[str]], truth: np.ndarray, ids: np.ndarray) -> float:
    hits = sum(len({*f} & {*ids[t].tolist()}) for f, t in zip(found, truth, strict=True))
    return hits / (K * len(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--latent", type=int, default=8, help="directions each cluster spreads along")
    parser.add_argument("--spread", type=float, default=1.0, help="sd along those directions")
    parser.add_argument("--noise", type=float, default=0.05, help="isotropic noise sd per dimension")
    parser.add_argument("--ef", default="10,20,40,64,100,160,250,400")
    parser.add_argument("--batch", type=int, default=100, help="queries per batched call")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--name", default="vectors")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-vectors-"))
    rng = np.random.default_rng(0)
    mixture = Clusters(rng, args.clusters, args.latent, args.spread, args.noise)
    items = mixture.sample(args.items, rng)
    queries = mixture.sample(args.queries, rng)
    ids = np.array([f"P{k:07d}" for k in range(args.items)])

    art = work / "ml-artifacts"
    if not (art / ITEM_EMBEDDINGS).exists():
        t0 = time.perf_counter()
        write_embeddings(art / ITEM_EMBEDDINGS, ids, items)
        write_embeddings(art / USER_EMBEDDINGS, np.arange(103, 1103), mixture.sample(1000, rng))
        write_item_attributes(art / ITEM_ATTRIBUTES, pa.table({
            "productCode": ids, "productLine": np.array(LINES)[rng.integers(0, len(LINES), args.items)],
            "quantityInStock": pa.array(rng.integers(0, 10_000, args.items), pa.int32())}))
        print(f"wrote the artifacts in {time.perf_counter() - t0:.1f} s", flush=True)
    db = open_vectors(f"pgserver://{work / 'pg'}")
    store, name = open_artifacts(str(art))
    t0 = time.perf_counter()
    loaded = load_vectors(db, store, name, progress=Printed())
    load_seconds = time.perf_counter() - t0
    print(f"loaded in {load_seconds:.1f} s: {loaded.seconds}", flush=True)

    t0 = time.perf_counter()
    truth = exact_top(items, queries)
    numpy_all = args.queries / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for q in queries[:50]:
        s = items @ q
        top = np.argpartition(-s, K)[:K]
        top[np.argsort(-s[top])]
    numpy_single = 50 / (time.perf_counter() - t0)

    rows, curve = [], []
    with VectorQueries(db) as vq:
        for ef in [int(x) for x in args.ef.split(",")]:
            vq.ef_search = ef
            vq.items_for_embedding(queries[0], K)  # warm the prepared statement
            latencies, found = [], []
            start = time.perf_counter()
            for q in queries:
                t = time.perf_counter()
                found.append([s.id for s in vq.items_for_embedding(q, K)])
                latencies.append(time.perf_counter() - t)
            single_qps = len(queries) / (time.perf_counter() - start)
            start = time.perf_counter()
            batched: list[list[str]] = []
            for lo in range(0, len(queries), args.batch):
                batched += [[s.id for s in r] for r in vq.items_for_embeddings(queries[lo:lo + args.batch], K)]
            batched_qps = len(queries) / (time.perf_counter() - start)
            r1, rb = recall(found, truth, ids), recall(batched, truth, ids)
            p50, p99 = (float(np.percentile(latencies, p)) * 1000 for p in (50, 99))
            curve.append({"ef_search": ef, "recall_at_10": r1, "recall_at_10_batched": rb, "single_qps": single_qps,
                          "batched_qps": batched_qps, "batched_vs_single": batched_qps / single_qps,
                          "p50_ms": p50, "p99_ms": p99})
            rows.append((ef, r1, single_qps, p50, p99, batched_qps, batched_qps / single_qps))
            print(f"ef_search {ef}: recall {r1:.4f}, {single_qps:,.0f} q/s single, {batched_qps:,.0f} q/s batched",
                  flush=True)
    rows.append(("numpy exact (baseline)", 1.0, numpy_single, "", "", numpy_all, numpy_all / numpy_single))
    db.stop()
    meets = [c for c in curve if c["recall_at_10"] >= 0.98 and c["single_qps"] >= 1000]
    hnsw = ", ".join(f"{k}={v}" for k, v in HNSW.items())
    report(args.name, f"pgvector HNSW ({hnsw}, cosine) on {args.items:,} × 32 clustered items, "
                      f"{args.queries:,} queries, k={K}; load {load_seconds:.0f} s "
                      f"(copy {loaded.seconds['copy']:.0f} s, index {loaded.seconds['index']:.0f} s)",
           ("ef_search", "recall@10", "single q/s", "p50 ms", "p99 ms", f"batched q/s ({args.batch}/call)",
            "batched × single"), rows,
           {"items": args.items, "queries": args.queries,
            "data": {"clusters": args.clusters, "latent": args.latent, "spread": args.spread, "noise": args.noise},
            "hnsw": HNSW, "load": loaded, "load_seconds": load_seconds, "curve": curve,
            "numpy_exact_qps": {"single": numpy_single, "all_at_once": numpy_all},
            "target_met_at_ef_search": [c["ef_search"] for c in meets]})


if __name__ == "__main__":
    main()
