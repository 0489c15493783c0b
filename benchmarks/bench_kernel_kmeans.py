"""Kernel k-means: its LME rule against the textbook rule, k-means and exact relevance.

For each data set: fits ``wc.KernelKMeans`` (``n_init=5``, ``random_state=0``) and
scikit-learn's ``KMeans`` (``n_init=10``), then prints one Markdown row with the share of
points on which the LME rule (``predict``) and the textbook rule (``predict_textbook``)
agree, the Hungarian-matched accuracy of each against the true classes, the fit time and
the largest conservation error of NEON over 500 points. Usage::

    python benchmarks/bench_kernel_kmeans.py [--mnist]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs, make_moons

import whyclust as wc


def _cases(mnist: bool):
    X, y = make_moons(1000, noise=0.08, random_state=0)
    yield "moons (noise 0.08)", X, y, 2, 10.0, 1000
    X, y = make_blobs(2000, 10, centers=5, cluster_std=2.0, random_state=0)
    yield "blobs (std 2)", X, y, 5, "scale", 2000
    X, y = wc.datasets.load_digits()
    yield "digits (sklearn)", X.astype(np.float64), y, 10, "scale", 2000
    if mnist:
        X, y = wc.datasets.load_mnist5k()
        yield "MNIST-5k", X.astype(np.float64), y, 10, "scale", 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", action="store_true", help="add MNIST-5k (slow)")
    args = parser.parse_args()
    acc = wc.metrics.cluster_accuracy
    print("| data | n x d | K | gamma | support | agreement LME vs textbook | ACC (LME rule) "
          "| ACC (textbook) | ACC k-means | fit s | max \\|sum R - f\\| / max f (500 pts) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, X, y, k, gamma, support in _cases(args.mnist):
        start = time.perf_counter()
        model = wc.KernelKMeans(k, gamma=gamma, n_init=5, max_support=support,
                                random_state=0).fit(X)  # fmt: skip
        fit_s = time.perf_counter() - start
        lme, textbook = model.predict(X), model.predict_textbook(X)
        km = KMeans(k, n_init=10, random_state=0).fit(X)
        rows = np.random.default_rng(0).choice(len(X), min(500, len(X)), replace=False)
        e = wc.explain(model, X[rows])
        err = np.abs(e.relevance.sum(1) - e.logit).max() / np.abs(e.logit).max()
        g = gamma if isinstance(gamma, float) else f"scale ({model.gamma_:.3g})"
        print(f"| {name} | {X.shape[0]}x{X.shape[1]} | {k} | {g} | {min(support, len(X))} "
              f"| {np.mean(lme == textbook):.3f} | {acc(y, lme):.3f} | {acc(y, textbook):.3f} "
              f"| {acc(y, km.labels_):.3f} | {fit_s:.1f} | {err:.1e} |")


if __name__ == "__main__":
    main()
