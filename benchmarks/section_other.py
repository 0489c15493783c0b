"""Sections c-f: clustering quality, scaling, NEON against predict, arrays on disk."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import (
    LABELS,
    Config,
    PeakRSS,
    available,
    best_time,
    import_benchmark,
    load,
    say,
    table,
    timed,
)


def section_clustering(cfg: Config) -> str:
    out = ["## c. Clustering quality and time", ""]
    module = import_benchmark("bench_clustering")
    if module is None or not hasattr(module, "run"):
        return "\n".join(
            [
                *out,
                "Skipped: benchmarks/bench_clustering.py (with run()) not "
                "found next to the package.",
                "",
            ]
        )
    names = [n for n in cfg.datasets if available(n) is None]
    mapping = {"digits": "digits", "mnist5k": "mnist5k", "fashion": "fashion"}
    rows: list[dict[str, Any]] = []
    for name in names:
        say(f"clustering: {name}")
        seeds = 1 if name == "fashion" else cfg.cluster_seeds
        rows += module.run([mapping[name]], seeds, online=not cfg.quick)
    render = getattr(module, "to_markdown", None)
    text = (
        render(rows)
        if render is not None
        else table(list(rows[0]), [list(r.values()) for r in rows])
        if rows
        else "(no rows)"
    )
    out += [
        "From `benchmarks/bench_clustering.py` (medians over "
        f"{cfg.cluster_seeds} seed(s)"
        + ("; 1 seed on Fashion-MNIST-70k" if "fashion" in names else "")
        + f"). K = 10.{' Quick mode: batch protocol only.' if cfg.quick else ''}",
        "",
        text,
        "",
    ]
    return "\n".join(out)


# --- section d: scaling ----------------------------------------------------------------------


def _scaling_data(n: int, d: int, seed: int) -> np.ndarray:
    if available("fashion") is None:
        X = load("fashion")[0]
        if n <= X.shape[0]:
            return X[:n]
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def _fix_mmap_threshold() -> bool:
    """glibc: serve every allocation above 128 KiB by mmap, so that frees return it to the OS.

    Otherwise glibc raises the threshold after the first large free and later buffers reuse
    resident heap pages, which hides their size from an RSS measurement.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, 128 * 1024))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def _scale_rows(jobs: Sequence[tuple[int, int]], d: int, seed: int) -> list[list[float]]:
    """Run in a fresh process: (explain s, predict s, peak RSS growth bytes) per (n, K)."""
    import gc

    import whyclust as wc

    fixed = _fix_mmap_threshold()
    out = []
    for n, k in jobs:
        X = np.array(_scaling_data(n, d, seed))
        rng = np.random.default_rng(seed)
        centers = X[rng.choice(X.shape[0], k, replace=False)]
        wc.explain(centers, X[:16])  # warm-up: imports, thread pools
        gc.collect()
        with PeakRSS() as mem:
            start = time.perf_counter()
            expl = wc.explain(centers, X)
            seconds = time.perf_counter() - start
        del expl
        seconds = best_time(lambda X=X, centers=centers: wc.explain(centers, X), seconds)
        net = wc.neuralize(centers)
        _, t_pred = timed(lambda net=net, X=X: net.predict(X))
        out.append([seconds, t_pred, float(mem.delta), float(fixed)])
        del X
        gc.collect()
    return out


def section_scaling(cfg: Config) -> str:
    import concurrent.futures as cf
    import multiprocessing as mp

    d = 784
    src = "Fashion-MNIST" if available("fashion") is None else "uniform random data"
    out = [
        "## d. Scaling of NEON (explain time and peak memory)",
        "",
        f"NEON (`wc.explain`) on the first n points of {src} (d = {d}, float32); centroids = "
        "K random data points (the explain cost does not depend on the fit). The rows run in "
        "one fresh process whose large buffers are all mmapped (glibc M_MMAP_THRESHOLD fixed), "
        "so that each row's peak is its own. Peak memory = growth of the resident set during "
        "the call, sampled every 2 ms; it includes the (n, d) relevance output (size shown). "
        "Predict (`net.predict`, argmax of the logits) for reference.",
        "",
    ]

    jobs = [(n, cfg.n_clusters) for n in cfg.scale_n] + [(cfg.scale_k_n, k) for k in cfg.scale_k]
    say(f"scaling: {len(jobs)} runs in a fresh process")
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        results = pool.submit(_scale_rows, jobs, d, 0).result()
    headers = [
        "n",
        "K",
        "explain (s)",
        "points/s",
        "predict (s)",
        "peak RSS growth (MiB)",
        "relevance output (MiB)",
    ]
    rows = [
        [f"{n:,}", k, sec, n / sec, t_pred, delta / 2**20, n * d * 4 / 2**20]
        for (n, k), (sec, t_pred, delta, _) in zip(jobs, results, strict=True)
    ]
    n_rows = len(cfg.scale_n)
    out += ["### Against n", "", table(headers, rows[:n_rows]), ""]
    out += ["### Against K", "", table(headers, rows[n_rows:]), ""]
    if not all(r[3] for r in results):
        out += ["(glibc's mmap threshold could not be fixed here: memory figures may be low.)", ""]
    return "\n".join(out)


def section_predict_ratio(cfg: Config) -> str:
    out = ["## e. NEON against KMeans.predict (cost, loop speed-up, memory)", ""]
    module = import_benchmark("bench_neon")
    name = "fashion" if available("fashion") is None else "mnist5k"
    if module is None:
        return "\n".join([*out, "Skipped: benchmarks/bench_neon.py not found.", ""])
    say(f"NEON vs predict: {name}")
    row = module.run(
        {"fashion": "fashion-mnist"}.get(name, name),
        repeats=3 if cfg.quick else 9,
        loop_points=50 if cfg.quick else 300,
    )
    label = LABELS.get(name, name)
    cfg.targets += [
        (
            "e",
            name,
            "k-means",
            "explain <= 3x KMeans.predict",
            f"{row['ratio_predict']:.2f}x",
            row["ratio_predict"] <= 3,
        ),
        (
            "e",
            name,
            "k-means",
            ">= 50x faster than a per-sample loop",
            f"{row['speedup_vs_loop']:,.0f}x",
            row["speedup_vs_loop"] >= 50,
        ),
        (
            "e",
            name,
            "k-means",
            "peak memory < 2x input",
            f"{row['memory_ratio']:.2f}x",
            row["memory_ratio"] < 2,
        ),
    ]
    return "\n".join(
        [*out, f"From `benchmarks/bench_neon.py` on {label}.", "", module.markdown(row), ""]
    )


def section_disk_memory(cfg: Config) -> str:
    out = ["## f. Predict and explain a 2 GB array on disk (peak memory)", ""]
    module = import_benchmark("bench_memory")
    if module is None:
        return "\n".join([*out, "Skipped: benchmarks/bench_memory.py not found.", ""])
    size = 0.25 if cfg.quick else 2.0
    say(f"on-disk memory: {size} GB")
    rows = module.run(size_gb=size, small_mb=64.0 if cfg.quick else 256.0)
    return "\n".join(
        [
            *out,
            f"From `benchmarks/bench_memory.py` ({size} GB, each input in a fresh process).",
            "",
            module.markdown(rows),
            "",
        ]
    )
