"""Section a: explanation speed of NEON and the baselines on k-means."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from _common import (
    LABELS,
    Config,
    available,
    best_time,
    dataset_kmeans,
    import_benchmark,
    load,
    mark,
    say,
    table,
)


def _speed_methods(X: np.ndarray, seed: int) -> dict[str, tuple[str, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    background = X[rng.choice(X.shape[0], min(50, X.shape[0]), replace=False)]
    return {
        "neon": ("NEON (whyclust)", {}),
        "gradient": ("gradient (captum)", {}),
        "gradient_x_input": ("gradient x input (captum)", {}),
        "integrated_gradients": ("integrated gradients, 50 steps (captum)", {"n_steps": 50}),
        "occlusion": ("occlusion, 1 feature (captum)", {}),
        "shap": ("kernel SHAP, 50 background rows (shap)", {"background": background}),
    }


def section_speed(cfg: Config) -> str:
    import whyclust as wc
    from whyclust.explainers import available_methods

    methods = set(available_methods())
    loop = import_benchmark("neon_loop")
    out = [
        "## a. Explanation speed",
        "",
        f"k-means with K={cfg.n_clusters} (scikit-learn, fitted once per dataset); every method "
        "explains the assigned cluster's logit f_c. Points/s is measured on the number of "
        "points shown; where that is fewer than the dataset, the time for all points is "
        "extrapolated linearly (marked *extrapolated*). 'x slower than NEON' = NEON's "
        "points/s divided by the method's. Each method is warmed up on 2 points first; runs "
        "under 2 s are repeated (best of 3; not SHAP and occlusion).",
        "",
    ]
    target_rows = []
    for name in cfg.datasets:
        missing = available(name)
        if missing:
            out += [f"### {LABELS[name]}", "", f"Skipped: {missing}", ""]
            continue
        say(f"speed: {name}")
        X, _ = load(name)
        n = X.shape[0]
        model = dataset_kmeans(name, cfg.n_clusters)
        rows = []
        neon_rate = float("nan")
        neon_beta: float | None = None
        rates: dict[str, float] = {}
        for key, (label, opts) in _speed_methods(X, 0).items():
            if key not in methods:
                rows.append([label, "-", "-", "-", "-", "not available (method not registered)"])
                continue
            m = cfg.speed_points[key] or n
            m = min(m, n)
            sub = X[:m]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if key != "shap":
                    wc.explain(model, X[:2], method=key, **opts)
                t0 = time.perf_counter()
                expl = wc.explain(model, sub, method=key, **opts)
                seconds = time.perf_counter() - t0
                if key not in ("shap", "occlusion"):
                    seconds = best_time(
                        lambda model=model, sub=sub, key=key, opts=opts: wc.explain(
                            model, sub, method=key, **opts
                        ),
                        seconds,
                    )
            rate = m / seconds
            rates[key] = rate
            if key == "neon":
                neon_rate, neon_beta = rate, expl.beta
            del expl
            note = "measured on all points" if m == n else f"*extrapolated* from {m:,} points"
            rows.append([label, f"{m:,}", rate, n / rate, neon_rate / rate, note])
        if loop is not None:
            m = min(cfg.speed_points["neon_loop"] or n, n)
            centers = model.cluster_centers_.astype(np.float64)
            beta = neon_beta if neon_beta is not None else wc.explain(model, X).beta
            t0 = time.perf_counter()
            loop.neon_loop(centers, X[:m], beta)
            seconds = time.perf_counter() - t0
            rate = m / seconds
            rates["neon_loop"] = rate
            note = "measured on all points" if m == n else f"*extrapolated* from {m:,} points"
            rows.append(
                [
                    "NEON as a per-sample Python loop (benchmarks/neon_loop.py)",
                    f"{m:,}",
                    rate,
                    n / rate,
                    neon_rate / rate,
                    note,
                ]
            )
        else:
            rows.append(
                [
                    "NEON per-sample loop",
                    "-",
                    "-",
                    "-",
                    "-",
                    "not run: benchmarks/neon_loop.py not found",
                ]
            )
        out += [
            f"### {LABELS[name]}",
            "",
            table(
                [
                    "method",
                    "points timed",
                    "points/s",
                    f"time for all {n:,} (s)",
                    "x slower than NEON",
                    "note",
                ],
                rows,
            ),
            "",
        ]
        for key, need in (("shap", 1000.0), ("integrated_gradients", 10.0)):
            if key in rates:
                ratio = neon_rate / rates[key]
                cfg.targets.append(
                    (
                        "a",
                        name,
                        "k-means",
                        f"NEON >= {need:,.0f}x faster than {key}",
                        f"{ratio:,.0f}x",
                        ratio >= need,
                    )
                )
                target_rows.append(
                    [
                        LABELS[name],
                        f"NEON >= {need:,.0f}x faster than {key}",
                        ratio,
                        mark(ratio >= need),
                    ]
                )
    if target_rows:
        out += [
            "### Speed targets",
            "",
            table(["dataset", "target", "measured ratio", "status"], target_rows),
            "",
        ]
    return "\n".join(out)
