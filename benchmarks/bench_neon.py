"""NEON speed and memory against scikit-learn's KMeans.predict, measured side by side.

Explains every image of Fashion-MNIST-70k (d=784, K=10, float32) and compares, in the same
run and interleaved so that machine noise hits both alike:
  - wc.explain(km, X) vs km.predict(X) (target: at most 3x),
  - a per-sample loop transcription of the equations (target: NEON >= 50x faster),
  - peak RSS growth of the explain call against the size of X (target: < 2x).

    .venv/bin/python benchmarks/bench_neon.py [--dataset fashion-mnist|mnist5k|digits]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeakRSS
from neon_loop import neon_loop

import whyclust as wc


def load(name: str) -> np.ndarray:
    loaders = {
        "fashion-mnist": wc.datasets.load_fashion_mnist,
        "mnist5k": wc.datasets.load_mnist5k,
        "digits": wc.datasets.load_digits,
    }
    return loaders[name]()[0]


def interleaved_medians(fns: dict, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def run(dataset: str = "fashion-mnist", repeats: int = 9, loop_points: int = 300) -> dict:
    from sklearn.cluster import KMeans

    X = load(dataset)
    km = KMeans(n_clusters=10, n_init=1, max_iter=50, random_state=0).fit(X)
    wc.explain(km, X[:1000])  # warm up torch kernels
    med = interleaved_medians(
        {"predict": lambda: km.predict(X), "neon": lambda: wc.explain(km, X)}, repeats
    )
    # the loop transcription on a subsample, extrapolated to the whole array
    sub = X[:loop_points].astype(np.float64)
    beta = wc.explain(km, X).beta
    t0 = time.perf_counter()
    neon_loop(km.cluster_centers_.astype(np.float64), sub, beta)
    loop_per_point = (time.perf_counter() - t0) / loop_points
    with PeakRSS() as mem:
        expl = wc.explain(km, X)
    err = float(np.abs(expl.relevance_sum() - expl.logit).max() / np.abs(expl.logit).max())
    n = X.shape[0]
    return {
        "dataset": dataset,
        "n": n,
        "d": X.shape[1],
        "predict_s": med["predict"],
        "neon_s": med["neon"],
        "ratio_predict": med["neon"] / med["predict"],
        "loop_s_extrapolated": loop_per_point * n,
        "speedup_vs_loop": loop_per_point * n / med["neon"],
        "peak_rss_growth_mb": mem.delta / 2**20,
        "input_mb": X.nbytes / 2**20,
        "memory_ratio": mem.delta / X.nbytes,
        "conservation_error": err,
        "loop_points": loop_points,
        "repeats": repeats,
    }


def markdown(row: dict) -> str:
    ok = lambda b: "yes" if b else "**no**"  # noqa: E731
    return "\n".join(
        [
            f"NEON on {row['dataset']} ({row['n']:,} x {row['d']}, K=10, float32), "
            f"median of {row['repeats']} interleaved runs:",
            "",
            "| quantity | value | target | met |",
            "|---|---|---|---|",
            f"| KMeans.predict | {row['predict_s'] * 1e3:.1f} ms | | |",
            f"| wc.explain (NEON, beta=auto) | {row['neon_s'] * 1e3:.1f} ms | | |",
            f"| explain / predict | {row['ratio_predict']:.2f}x | <= 3x | "
            f"{ok(row['ratio_predict'] <= 3)} |",
            f"| per-sample loop (extrapolated from {row['loop_points']} points) | "
            f"{row['loop_s_extrapolated']:.1f} s | | |",
            f"| NEON speed-up over the loop | {row['speedup_vs_loop']:,.0f}x | >= 50x | "
            f"{ok(row['speedup_vs_loop'] >= 50)} |",
            f"| peak RSS growth of explain / input size | {row['peak_rss_growth_mb']:.0f} MB / "
            f"{row['input_mb']:.0f} MB = {row['memory_ratio']:.2f}x | < 2x | "
            f"{ok(row['memory_ratio'] < 2)} |",
            f"| max relative conservation error | {row['conservation_error']:.1e} | <= 1e-4 | "
            f"{ok(row['conservation_error'] <= 1e-4)} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist",
                        choices=["fashion-mnist", "mnist5k", "digits"])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--loop-points", type=int, default=300)
    args = parser.parse_args(argv)
    print(markdown(run(args.dataset, args.repeats, args.loop_points)))


if __name__ == "__main__":
    main()
