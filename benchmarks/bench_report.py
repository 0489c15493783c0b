"""Time and size of the HTML report on Fashion-MNIST-70k (the report alone, explanation given).

    PYTHONPATH=src python benchmarks/bench_report.py [--out /tmp/fashion_report.html]

Fits k-means (K = 10, one restart, so that the fit stays short: its quality is not what is
measured), explains all 70,000 images with NEON, then times ``write_report`` with that
explanation and prints the seconds and the file size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/fashion_report.html")
    args = parser.parse_args()
    X, y = wc.datasets.load_fashion_mnist()
    t0 = time.perf_counter()
    km = KMeans(10, n_init=1, max_iter=100, random_state=0).fit(X)
    t1 = time.perf_counter()
    expl = wc.explain(km, X)
    t2 = time.perf_counter()
    names = np.asarray(wc.datasets.FASHION_MNIST_CLASSES)[y]
    path = write_report(km, X, args.out, y=names, explanation=expl, image_shape=(28, 28),
                        data_name="Fashion-MNIST")  # fmt: skip
    t3 = time.perf_counter()
    size = Path(path).stat().st_size
    print(f"points {X.shape[0]:,} x {X.shape[1]}; fit {t1 - t0:.1f} s, explain {t2 - t1:.1f} s")
    print(f"report {t3 - t2:.1f} s, {size / 1e6:.1f} MB -> {path}")


if __name__ == "__main__":
    main()
