"""Throughput of NEON through scikit-learn Pipelines against bare k-means, same data.

Fits KMeans on X, and the pipelines StandardScaler + KMeans and StandardScaler + PCA +
KMeans (same K), then times one explanation of all rows of X by each (the fits are not
timed), the models taking turns for ``--repeats`` rounds. Prints a Markdown table with the
ratio of each pipeline's time to bare k-means', of the best and of the median rounds. Usage::

    python benchmarks/bench_pipeline.py [--data synthetic|fashion] [--n 100000] [--d 100]
        [--k 10] [--pca 20] [--repeats 7] [--float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from whyclust.explainers.kmeans import explain_kmeans
from whyclust.explainers.pipeline import explain_pipeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["synthetic", "fashion"], default="synthetic")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--pca", type=int, default=20)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--float32", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.data == "fashion":
        import whyclust as wc

        X, _ = wc.datasets.load_fashion_mnist()
        X = X.reshape(len(X), -1).astype(np.float64)
    else:
        rng = np.random.default_rng(a.seed)
        centers = rng.normal(size=(a.k, a.d)) * 3
        X = centers[rng.integers(0, a.k, a.n)] + rng.normal(size=(a.n, a.d))
        X = X * rng.uniform(0.5, 20, a.d) + rng.uniform(-50, 50, a.d)
    if a.float32:
        X = X.astype(np.float32)
    fit_rows = X[: min(len(X), 20_000)].astype(np.float64)
    km = KMeans(a.k, n_init=1, max_iter=50, random_state=a.seed).fit(fit_rows)
    pipes = {
        "StandardScaler + KMeans": make_pipeline(StandardScaler(), KMeans(a.k, n_init=1,
                                                 max_iter=50, random_state=a.seed)),
        f"StandardScaler + PCA({a.pca}) + KMeans": make_pipeline(
            StandardScaler(), PCA(a.pca, random_state=a.seed),
            KMeans(a.k, n_init=1, max_iter=50, random_state=a.seed)),
    }  # fmt: skip
    for pipe in pipes.values():
        pipe.fit(fit_rows)
    calls = {"KMeans (bare)": lambda: explain_kmeans(km.cluster_centers_, X)}
    for name, pipe in pipes.items():
        calls[name] = lambda pipe=pipe: explain_pipeline(pipe, X)
    times, results = _interleaved(calls, a.repeats)
    base_min, base_med = min(times["KMeans (bare)"]), float(np.median(times["KMeans (bare)"]))
    print(f"data={a.data} n={X.shape[0]} d={X.shape[1]} K={a.k} dtype={X.dtype} "
          f"{a.repeats} interleaved rounds, reference=midpoint, beta=auto")  # fmt: skip
    print(
        "| model | explain time, best / median (s) | rows/s (best) | ratio to bare KMeans, "
        "best / median | max rel. conservation error |"
    )
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        e = results[name]
        t_min, t_med = min(ts), float(np.median(ts))
        err = np.abs(e.relevance.sum(1) - e.logit).max() / np.abs(e.logit).max()
        print(f"| {name} | {t_min:.3f} / {t_med:.3f} | {X.shape[0] / t_min:,.0f} | "
              f"{t_min / base_min:.2f} / {t_med / base_med:.2f} | {err:.1e} |")  # fmt: skip


def _interleaved(calls: dict, rounds: int) -> tuple[dict[str, list[float]], dict]:
    """Each round calls every model once, in turn (a noisy machine's slow spells then hit
    all of them alike); one warm-up call each first."""
    results = {name: fn() for name, fn in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times, results


if __name__ == "__main__":
    main()
