"""Where one exact k-means restart's time goes, against this machine's matmul rate.

Usage:
    .venv/bin/python benchmarks/bench_kmeans.py [--points results/clusters/points.npy] [--n 774200]
        [--dim 100] [--k 200] [--iterations 5] [--threads 1] [--full]

Prints, on the PCA points of a run (``--points``, as ``pca_points`` writes them) or on
random float32 points of ``--n`` x ``--dim``:

- the float32 matmul of one assignment step (points x centres) and its GFLOP/s;
- one Lloyd iteration of scikit-learn's ``KMeans`` (``lloyd`` and ``elkan``), from
  ``--iterations`` iterations after a fixed start, and its ratio to the matmul;
- the k-means++ seeding of one restart;
- with ``--full``, one whole restart as the clusters stage runs it
  (the k-means call of ``curatornet.clusters.fit_restart``: seeding, Lloyd to
  convergence), with its iterations.

Issue 19's goal for the clusters stage at scale 100 (774,200 items, k = 200, 20
restarts) is 6 minutes on 2 cores; the figures say how far exact Lloyd is from it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus
from threadpoolctl import threadpool_limits


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def per_iteration(points: np.ndarray, centres: np.ndarray, algorithm: str, iterations: int) -> float:
    """Seconds per Lloyd iteration: ``iterations`` iterations from ``centres`` (tol 0, so none stops early)."""
    model = KMeans(len(centres), init=centres, n_init=1, max_iter=iterations, tol=0.0, algorithm=algorithm)
    return seconds(lambda: model.fit(points)) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=Path, help="a run's clusters/points.npy (default: random points)")
    parser.add_argument("--n", type=int, default=774_200, help="random points: rows (scale 100's items)")
    parser.add_argument("--dim", type=int, default=100, help="random points: columns (clusters.pca_dim)")
    parser.add_argument("--k", type=int, default=200, help="clusters (clusters.k)")
    parser.add_argument("--iterations", type=int, default=5, help="Lloyd iterations timed per algorithm")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (a restart job has 1)")
    parser.add_argument("--full", action="store_true", help="also time one whole restart to convergence")
    args = parser.parse_args()

    if args.points:
        points = np.ascontiguousarray(np.load(args.points), dtype=np.float32)
        source = str(args.points)
    else:
        points = np.random.default_rng(0).standard_normal((args.n, args.dim), dtype=np.float32)
        source = "random normal points"
    n, dim = points.shape
    rng = np.random.default_rng(1)
    centres = points[rng.choice(n, size=args.k, replace=False)].copy()
    print(f"{n:,} points x {dim} ({source}), k = {args.k}, {args.threads} thread(s)")

    with threadpool_limits(limits=args.threads):
        points @ centres.T  # warm-up
        matmul = min(seconds(lambda: points @ centres.T) for _ in range(3))
        gflops = 2 * n * dim * args.k / matmul / 1e9
        print(f"assignment matmul: {matmul * 1e3:.0f} ms ({gflops:.0f} GFLOP/s)")
        for algorithm in ("lloyd", "elkan"):
            step = per_iteration(points, centres, algorithm, args.iterations)
            print(f"scikit-learn {algorithm}: {step * 1e3:.0f} ms per iteration ({step / matmul:.2f} x the matmul)")
        seeding = seconds(lambda: kmeans_plusplus(points, args.k, random_state=0))
        print(f"k-means++ seeding: {seeding:.1f} s")
        if args.full:
            from curatornet.clusters import _fit_restart  # the stage's own k-means call, without the silhouette

            _, _, iterations, whole = _fit_restart(points, args.k, seed=0)
            print(f"one restart (k-means of fit_restart): {whole:.1f} s, {iterations} iterations")
            print(f"20 restarts on 2 cores: about {20 * whole / 2 / 60:.1f} min of this")


if __name__ == "__main__":
    main()
