"""Shared pieces of the benchmark sections: sizes of a run, data, tables, timing, header."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("a", "b", "c", "d", "e", "f")
#: sections run when --sections is not given (f writes 2 GB to disk and takes minutes)
DEFAULT_SECTIONS = ("a", "b", "c", "d", "e")


@dataclass
class Config:
    """Sizes of one run (``--quick`` shrinks everything)."""

    quick: bool
    datasets: tuple[str, ...]
    n_clusters: int = 10
    # section a: points timed per method (None = all points)
    speed_points: dict[str, int | None] | None = None
    # section b (its sizes are in section_faithfulness.Sizes): result cache, cache-only run
    cache: Path | None = None
    partial: bool = False
    seeds: tuple[int, ...] | None = None
    # section d
    scale_n: tuple[int, ...] = (1_000, 5_000, 20_000, 70_000)
    scale_k: tuple[int, ...] = (2, 5, 10, 20, 50)
    scale_k_n: int = 10_000
    # section c
    cluster_seeds: int = 3
    # (section, dataset, model, target, measured, met) collected for the closing summary
    targets: list[tuple[str, str, str, str, str, bool]] = field(default_factory=list)

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(
                quick=True,
                datasets=("digits",),
                speed_points={
                    "neon": None,
                    "gradient": 200,
                    "gradient_x_input": 200,
                    "integrated_gradients": 40,
                    "occlusion": 20,
                    "shap": 1,
                    "neon_loop": 100,
                },
                scale_n=(1_000, 4_000),
                scale_k=(2, 10),
                scale_k_n=2_000,
                cluster_seeds=1,
            )
        return cls(
            quick=False,
            datasets=("digits", "mnist5k", "fashion"),
            speed_points={
                "neon": None,
                "gradient": 2_000,
                "gradient_x_input": 2_000,
                "integrated_gradients": 200,
                "occlusion": 100,
                "shap": 4,
                "neon_loop": 500,
            },
        )


# --- small utilities -------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if not np.isfinite(v):
                return "n/a"
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


class PeakRSS:
    """Peak resident set size above the value at entry, sampled in a thread (every 2 ms).

    torch allocates outside Python's allocator, so tracemalloc would not see its buffers.
    """

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.delta = 0

    def __enter__(self) -> PeakRSS:
        self._start = self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.delta = self._peak - self._start


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_time(fn: Callable[[], Any], first: float, budget: float = 2.0, repeats: int = 3) -> float:
    """Best of up to ``repeats`` runs (``first`` is the time of one already done), while cheap."""
    best = first
    for _ in range(repeats - 1):
        if best > budget:
            break
        best = min(best, timed(fn)[1])
    return best


BENCHMARKS = Path(__file__).resolve().parent


def import_benchmark(name: str) -> Any | None:
    """A module of this folder by name (None when the file is missing)."""
    if not (BENCHMARKS / f"{name}.py").is_file():
        return None
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


_DATA: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from whyclust import datasets

    if name not in _DATA:
        loader = {
            "digits": datasets.load_digits,
            "mnist5k": datasets.load_mnist5k,
            "fashion": datasets.load_fashion_mnist,
        }[name]
        _DATA[name] = loader()
    return _DATA[name]


LABELS = {
    "digits": "digits (1,797 x 64)",
    "mnist5k": "MNIST-5k (5,000 x 784)",
    "fashion": "Fashion-MNIST (70,000 x 784)",
}


def available(name: str) -> str | None:
    """None when the dataset loads, else why not."""
    try:
        load(name)
    except (FileNotFoundError, ImportError) as exc:
        return str(exc)
    return None


def kmeans(X: np.ndarray, k: int, seed: int = 0):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=1, random_state=seed).fit(X)


_MODELS: dict[tuple[str, int], Any] = {}


def dataset_kmeans(name: str, k: int) -> Any:
    """k-means of a whole dataset, fitted once per run (sections a and b share it)."""
    if (name, k) not in _MODELS:
        _MODELS[name, k] = kmeans(load(name)[0], k)
    return _MODELS[name, k]


def say(msg: str) -> None:
    print(f"... {msg}", file=sys.stderr, flush=True)


# --- header ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    from importlib import metadata

    dist = {"sklearn": "scikit-learn", "faiss": "faiss-cpu"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return "not installed"
        return str(getattr(mod, "__version__", "?"))


def header(argv: Sequence[str], cfg: Config) -> str:
    import psutil
    import torch

    ram = psutil.virtual_memory().total / 2**30
    versions = ", ".join(
        f"{name} {_version(mod)}"
        for name, mod in [
            ("whyclust", "whyclust"),
            ("numpy", "numpy"),
            ("torch", "torch"),
            ("scikit-learn", "sklearn"),
            ("captum", "captum"),
            ("shap", "shap"),
            ("zennit", "zennit"),
            ("faiss", "faiss"),
        ]
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# whyclust benchmarks",
            "",
            f"- Date: {now}",
            f"- Command: `{' '.join(['python benchmarks/run.py', *argv])}`",
            f"- Machine: {_cpu_model()}, {os.cpu_count()} logical cores, {ram:.1f} GiB RAM, "
            f"torch threads {torch.get_num_threads()}, {platform.platform()}",
            f"- Versions: Python {platform.python_version()}, {versions}",
            f"- Mode: {'quick (small subsamples, smoke test only)' if cfg.quick else 'full'}",
            "",
            "All tables below come from this one run. Times are wall-clock seconds on CPU, "
            "float32.",
        ]
    )
