"""Cost of NEON on the deep models of section b against the gradient, warm and repeated.

Trains the models of section b (same sizes, one model seed) and times ``wc.explain`` on
each row's held-out points for NEON (design A), NEON-B (training mean), the gradient,
gradient x input, IG(0) and occlusion(0): every method is warmed up on 2 points, then the
best of ``--repeats`` calls counts (more calls for fast methods: as many as fit in one
second). Prints a Markdown table with NEON's time over the gradient's. Usage::

    python benchmarks/bench_deep_cost.py [--datasets digits,mnist5k] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Config, available, load, table
from section_faithfulness import Sizes, _models

METHODS = [
    ("NEON", "neon", {}),
    ("NEON-B(mean)", "neon", {"reference": "MEAN"}),
    ("gradient", "gradient", {}),
    ("GxI", "gradient_x_input", {}),
    ("IG(0)", "integrated_gradients", {"n_steps": 32}),
    ("occl(0)", "occlusion", {}),
]


def _time(fn, repeats: int, budget: float = 1.0) -> float:
    """Best of at least ``repeats`` calls, and of as many as fit in ``budget`` seconds
    (calls of a few ms vary by more than their length on shared cores)."""
    fn()  # warm-up happens on 2 points by the caller; this is the first full call
    best, spent, calls = float("inf"), 0.0, 0
    while calls < repeats or spent < budget:
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        best, spent, calls = min(best, took), spent + took, calls + 1
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits,mnist5k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    import whyclust as wc

    sz = Sizes.of(Config.make(False))
    rows = []
    for name in a.datasets.split(","):
        if available(name):
            print(f"skipping {name}: {available(name)}")
            continue
        X, _ = load(name)
        X = X.astype(np.float32)
        perm = np.random.default_rng(1).permutation(X.shape[0])
        test, train = perm[: sz.eval_points], perm[sz.eval_points :]
        Xtr, Xte = X[train], X[test]
        mean = Xtr.mean(0)
        side, d = round(X.shape[1] ** 0.5), X.shape[1]
        for label, model, images in _models(name, Xtr, sz, a.seed, skip={"k-means (raw)"}):
            net = wc.neuralize(model)
            Xe = Xte.reshape(-1, 1, side, side) if images else Xte
            Xe = Xe[: sz.conv_points] if images else Xe[: sz.big_points] if d > 100 else Xe
            m = mean.reshape(1, side, side) if images else mean
            times = {}
            for col, method, opts in METHODS:
                kw = {k: (m if v == "MEAN" else v) for k, v in opts.items()}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wc.explain(net, Xe[:2], method=method, **kw)
                    call = lambda net=net, Xe=Xe, method=method, kw=kw: wc.explain(  # noqa: E731
                        net, Xe, method=method, **kw
                    )
                    times[col] = _time(call, a.repeats)
            rows.append([name, label, len(Xe), *(f"{times[c] * 1e3:.1f}" for c, _, _ in METHODS),
                         f"{times['NEON'] / times['gradient']:.2f}"])  # fmt: skip
            print(f"{name} / {label}: NEON {times['NEON'] * 1e3:.1f} ms, gradient "
                  f"{times['gradient'] * 1e3:.1f} ms", flush=True)  # fmt: skip
    print()
    print(table(["dataset", "model", "points", *(f"{c} (ms)" for c, _, _ in METHODS),
                 "NEON / gradient"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
