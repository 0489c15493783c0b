"""``whyclust bench``: every benchmark table of whyclust, measured side by side in one run.

Writes BENCHMARKS.md with the machine, the versions, the date and the command, then

a. explanation speed: points/s and the ratio to NEON for NEON, gradient, gradient x input,
   integrated gradients (50 steps), occlusion, kernel SHAP and a per-sample Python loop
   transcription of NEON (``benchmarks/neon_loop.py``), on digits, MNIST-5k and
   Fashion-MNIST-70k; slow methods run on a subsample and their time for all points is
   extrapolated (and labelled so);
b. faithfulness: deletion AUC (:mod:`whyclust.evaluation`) of every method on the same points
   for k-means and TELL, raw and deep (a small autoencoder + k-means on its codes, and TELL
   with an encoder), with the clustering accuracy of each model;
c. clustering quality and time: TELL against scikit-learn KMeans / MiniBatchKMeans and faiss
   (``benchmarks/bench_clustering.py``);
d. scaling: NEON explain time and peak memory against n (1k to 70k) and K (2 to 50).

Usage::

    whyclust bench [--quick] [--out BENCHMARKS.md] [--sections a,b,c,d,e,f]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import os
import platform
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

SECTIONS = ("a", "b", "c", "d", "e", "f")
#: sections run when --sections is not given (f writes 2 GB to disk and takes minutes)
DEFAULT_SECTIONS = ("a", "b", "c", "d", "e")
BASELINES = ("gradient", "gradient_x_input", "integrated_gradients", "occlusion", "shap")
#: methods NEON must beat in deletion AUC (the target of issue 5)
MUST_BEAT = ("gradient", "gradient_x_input", "occlusion", "random")


@dataclass
class Config:
    """Sizes of one run (``--quick`` shrinks everything)."""

    quick: bool
    datasets: tuple[str, ...]
    n_clusters: int = 10
    # section a: points timed per method (None = all points)
    speed_points: dict[str, int | None] | None = None
    # section b
    eval_points: int = 150
    shap_points: int = 4
    n_steps: int = 20
    ae_points: int = 5000
    ae_epochs: int = 10
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
                eval_points=30,
                shap_points=2,
                n_steps=10,
                ae_points=600,
                ae_epochs=2,
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if not np.isfinite(v):
                return "n/a"
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
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


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _best_time(fn: Callable[[], Any], first: float, budget: float = 2.0, repeats: int = 3) -> float:
    """Best of up to ``repeats`` runs (``first`` is the time of one already done), while cheap."""
    best = first
    for _ in range(repeats - 1):
        if best > budget:
            break
        best = min(best, _timed(fn)[1])
    return best


def _benchmarks_dir() -> Path | None:
    """The repository's ``benchmarks/`` folder (next to ``src/``), or one in the cwd."""
    for cand in (Path(__file__).resolve().parents[2] / "benchmarks", Path.cwd() / "benchmarks"):
        if cand.is_dir():
            return cand
    return None


def _import_benchmark(name: str) -> Any | None:
    folder = _benchmarks_dir()
    if folder is None or not (folder / f"{name}.py").is_file():
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(name)


_DATA: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from whyclust import datasets

    if name not in _DATA:
        loader = {
            "digits": datasets.load_digits,
            "mnist5k": datasets.load_mnist5k,
            "fashion": datasets.load_fashion_mnist,
        }[name]
        _DATA[name] = loader()
    return _DATA[name]


_LABELS = {
    "digits": "digits (1,797 x 64)",
    "mnist5k": "MNIST-5k (5,000 x 784)",
    "fashion": "Fashion-MNIST (70,000 x 784)",
}


def _available(name: str) -> str | None:
    """None when the dataset loads, else why not."""
    try:
        _load(name)
    except (FileNotFoundError, ImportError) as exc:
        return str(exc)
    return None


def _kmeans(X: np.ndarray, k: int, seed: int = 0):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=1, random_state=seed).fit(X)


_MODELS: dict[tuple[str, int], Any] = {}


def _dataset_kmeans(name: str, k: int) -> Any:
    """k-means of a whole dataset, fitted once per run (sections a and b share it)."""
    if (name, k) not in _MODELS:
        _MODELS[name, k] = _kmeans(_load(name)[0], k)
    return _MODELS[name, k]


def _say(msg: str) -> None:
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
            f"- Command: `whyclust bench {' '.join(argv)}`".replace("bench `", "bench`"),
            f"- Machine: {_cpu_model()}, {os.cpu_count()} logical cores, {ram:.1f} GiB RAM, "
            f"torch threads {torch.get_num_threads()}, {platform.platform()}",
            f"- Versions: Python {platform.python_version()}, {versions}",
            f"- Mode: {'quick (small subsamples, smoke test only)' if cfg.quick else 'full'}",
            "",
            "All tables below come from this one run. Times are wall-clock seconds on CPU, "
            "float32.",
        ]
    )


# --- section a: speed ------------------------------------------------------------------------


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
    loop = _import_benchmark("neon_loop")
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
        missing = _available(name)
        if missing:
            out += [f"### {_LABELS[name]}", "", f"Skipped: {missing}", ""]
            continue
        _say(f"speed: {name}")
        X, _ = _load(name)
        n = X.shape[0]
        model = _dataset_kmeans(name, cfg.n_clusters)
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
                    seconds = _best_time(
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
            f"### {_LABELS[name]}",
            "",
            _table(
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
                        _LABELS[name],
                        f"NEON >= {need:,.0f}x faster than {key}",
                        ratio,
                        _mark(ratio >= need),
                    ]
                )
    if target_rows:
        out += [
            "### Speed targets",
            "",
            _table(["dataset", "target", "measured ratio", "status"], target_rows),
            "",
        ]
    return "\n".join(out)


# --- section b: faithfulness -----------------------------------------------------------------


def _train_autoencoder(X: np.ndarray, cfg: Config, seed: int):
    """A small fully connected autoencoder d-256-64-10, trained briefly with Adam (MSE)."""
    import torch

    from whyclust.models.autoencoders import mlp_autoencoder

    torch.manual_seed(seed)
    enc, dec = mlp_autoencoder(X.shape[1], hidden=(256, 64), n_latent=10)
    rng = np.random.default_rng(seed)
    sub = X[rng.choice(X.shape[0], min(cfg.ae_points, X.shape[0]), replace=False)]
    data = torch.from_numpy(np.ascontiguousarray(sub, dtype=np.float32))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    for _ in range(cfg.ae_epochs):
        for idx in torch.randperm(data.shape[0]).split(128):
            loss = torch.nn.functional.mse_loss(dec(enc(data[idx])), data[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return enc.eval(), dec.eval()


def _faithfulness_models(name: str, cfg: Config) -> Iterator[tuple[str, Any, str]]:
    """(label, fitted model or None, note) for k-means / TELL, raw / deep."""
    import torch

    k = cfg.n_clusters
    X = _load(name)[0]
    yield "k-means (raw)", _dataset_kmeans(name, k), ""
    try:
        from whyclust.models.tell import TELL
    except ImportError as exc:
        yield "TELL (raw)", None, f"TELL not available: {exc}"
        tell_cls = None
    else:
        tell_cls = TELL
        yield "TELL (raw)", TELL(k, random_state=0).fit(X), ""
    try:
        enc, _ = _train_autoencoder(X, cfg, 0)
        with torch.no_grad():
            codes = enc(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()
        yield (
            "autoencoder + k-means (deep)",
            (enc, _kmeans(codes, k).cluster_centers_),
            f"AE d-256-64-10, {cfg.ae_epochs} epochs on {min(cfg.ae_points, len(X)):,} pts",
        )
    except Exception as exc:  # a row that cannot run is reported, not fatal
        yield "autoencoder + k-means (deep)", None, f"skipped: {type(exc).__name__}: {exc}"
    if tell_cls is not None:
        try:
            from whyclust.models.autoencoders import mlp_autoencoder

            torch.manual_seed(0)
            pair = mlp_autoencoder(X.shape[1], hidden=(256, 64), n_latent=10)
            rng = np.random.default_rng(0)
            sub = X[rng.choice(X.shape[0], min(cfg.ae_points, X.shape[0]), replace=False)]
            model = tell_cls(
                k,
                encoder=pair,
                pretrain_epochs=cfg.ae_epochs,
                max_iter=max(2, cfg.ae_epochs // 2),
                random_state=0,
            ).fit(sub)
            yield (
                "TELL + encoder (deep)",
                model,
                f"AE d-256-64-10, {cfg.ae_epochs} pretrain epochs on {len(sub):,} pts",
            )
        except Exception as exc:
            yield "TELL + encoder (deep)", None, f"skipped: {type(exc).__name__}: {exc}"


def section_faithfulness(cfg: Config) -> str:
    import whyclust as wc
    from whyclust.evaluation import deletion_curve, insertion_curve
    from whyclust.explainers import available_methods
    from whyclust.metrics import cluster_accuracy

    available = set(available_methods())
    methods = ["neon", *(m for m in BASELINES if m in available), "random"]
    options: dict[str, dict[str, Any]] = {"integrated_gradients": {"n_steps": 50}}
    shown = [m for m in methods if m != "shap"]
    out = [
        "## b. Faithfulness: deletion AUC (lower is better)",
        "",
        f"Deletion curves of f_c (whyclust.evaluation, {cfg.n_steps} steps, baseline = feature "
        f"mean) on the same {cfg.eval_points} points per dataset (drawn at random, seed 1); "
        "each point's area is normalised by its f_c at step 0 and the table shows the median "
        "over points (the mean is dominated by the few points whose f_c is close to 0). "
        "Integrated gradients: 50 steps from 0. ACC: cluster accuracy of the model on the "
        "whole dataset (Hungarian matching). Kernel SHAP is too slow for all points: it runs "
        f"on the first {cfg.shap_points} of them, next to NEON's area on those same points. "
        "The target columns compare NEON with the other methods on all points. "
        "Missing baselines: "
        f"{', '.join(m for m in BASELINES if m not in available) or 'none'}.",
        "",
    ]
    headers = ["dataset", "model", "ACC", *shown]
    if "shap" in methods:
        headers += [f"shap ({cfg.shap_points} pts)", f"neon ({cfg.shap_points} pts)"]
    ins_headers = [h for h in headers if h != "ACC"]
    headers += ["NEON < grad, gxi, occl, random", "NEON within 10% of best", "note"]
    rows = []
    ins_rows: list[list[Any]] = []
    for name in cfg.datasets:
        missing = _available(name)
        if missing:
            rows.append([name, "-", *["-"] * (len(headers) - 3), f"skipped: {missing}"])
            continue
        X, y = _load(name)
        pts = np.random.default_rng(1).choice(
            X.shape[0], min(cfg.eval_points, X.shape[0]), replace=False
        )
        Xe = X[np.sort(pts)]
        for label, model, note in _faithfulness_models(name, cfg):
            _say(f"faithfulness: {name} / {label}")
            if model is None:
                rows.append([name, label, *["-"] * (len(headers) - 3), note])
                continue
            net = wc.neuralize(model)
            acc = cluster_accuracy(y, net.predict(X))
            auc: dict[str, float] = {}
            ins: dict[str, float] = {}
            errors = []
            for m in methods:
                pts_m = Xe[: cfg.shap_points] if m == "shap" else Xe
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if m == "random":
                            rel = np.random.default_rng(0).random(pts_m.shape)
                        else:
                            rel = wc.explain(net, pts_m, method=m, **options.get(m, {})).relevance
                        curve = deletion_curve(net, pts_m, rel, n_steps=cfg.n_steps)
                        up = insertion_curve(net, pts_m, rel, n_steps=cfg.n_steps)
                    auc[m] = float(np.nanmedian(curve.auc))
                    ins[m] = float(np.nanmedian(up.auc))
                    if m == "neon":
                        auc["neon@shap"] = float(np.nanmedian(curve.auc[: cfg.shap_points]))
                        ins["neon@shap"] = float(np.nanmedian(up.auc[: cfg.shap_points]))
                except Exception as exc:
                    errors.append(f"{m}: {type(exc).__name__}: {str(exc)[:80]}")
            row: list[Any] = [name, label, acc, *(auc.get(m, float("nan")) for m in shown)]
            ins_row: list[Any] = [name, label, *(ins.get(m, float("nan")) for m in shown)]
            if "shap" in methods:
                row += [auc.get("shap", float("nan")), auc.get("neon@shap", float("nan"))]
                ins_row += [ins.get("shap", float("nan")), ins.get("neon@shap", float("nan"))]
            ins_rows.append(ins_row)
            beat = [m for m in MUST_BEAT if m in auc]
            neon = auc.get("neon", float("nan"))
            beats = all(neon < auc[m] for m in beat) if beat and np.isfinite(neon) else False
            best = min((auc[m] for m in shown if m in auc), default=float("nan"))
            within = bool(np.isfinite(neon) and neon <= best + 0.1 * abs(best))
            others = ", ".join(f"{m} {auc[m]:.3g}" for m in beat if m != "neon")
            cfg.targets.append(
                (
                    "b",
                    name,
                    label,
                    "deletion AUC: NEON < gradient, gradient x input, occlusion, random",
                    f"NEON {neon:.3g} vs {others}",
                    beats,
                )
            )
            cfg.targets.append(
                (
                    "b",
                    name,
                    label,
                    "deletion AUC: NEON within 10% of the best",
                    f"NEON {neon:.3g}, best {best:.3g}",
                    within,
                )
            )
            row += [_mark(beats), _mark(bool(within)), "; ".join([note, *errors]).strip("; ")]
            rows.append(row)
    out += [
        _table(headers, rows),
        "",
        "### Insertion AUC (higher is better)",
        "",
        "Same points, rankings and baseline: start from the baseline and restore the most "
        "relevant features first; median over points of the area under f_c / f_c(x).",
        "",
        _table(ins_headers, ins_rows),
        "",
        _ground_truth(cfg, methods),
        "",
    ]
    return "\n".join(out)


def _ground_truth(cfg: Config, methods: Sequence[str]) -> str:
    """Share of positive relevance on the informative features of synthetic blobs."""
    from sklearn.cluster import KMeans

    import whyclust as wc
    from whyclust.evaluation import relevance_on_informative

    n, k, d, informative_k = (150, 3, 20, 4) if cfg.quick else (600, 4, 20, 4)
    n_shap = 2 if cfg.quick else 10
    headers = ["noise mean", *(m for m in methods if m != "random"), "random"]
    rows = []
    for noise_mean in (0.0, 100.0):
        _say(f"ground truth: noise_mean={noise_mean:g}")
        X, _, mask = wc.datasets.make_blobs_with_relevant_features(
            n, k, d, informative_k, noise_mean=noise_mean, random_state=0
        )
        model = KMeans(k, n_init=3, random_state=0).fit(X)
        row: list[Any] = [f"{noise_mean:g}"]
        for m in headers[1:]:
            if m == "random":
                rel = np.random.default_rng(0).random(X.shape)
                row.append(relevance_on_informative(rel, mask))
                continue
            pts = X[:n_shap] if m == "shap" else X
            opts = {"n_steps": 50} if m == "integrated_gradients" else {}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row.append(
                        relevance_on_informative(wc.explain(model, pts, method=m, **opts), mask)
                    )
            except Exception as exc:  # reported in the cell, not fatal
                row.append(f"failed: {type(exc).__name__}")
        rows.append(row)
    return "\n".join(
        [
            "### Ground truth: share of positive relevance on the informative features",
            "",
            f"k-means (K={k}) on make_blobs_with_relevant_features: {n} points, {d} features of "
            f"which {informative_k} separate the clusters (ideal share 1, random order "
            f"{informative_k / d:g}); the other features are noise with the given mean. "
            f"Kernel SHAP on the first {n_shap} points. Methods that are not "
            "translation invariant (gradient x input, integrated gradients and occlusion from 0) "
            "fail when the noise mean is large.",
            "",
            _table(headers, rows),
        ]
    )


# --- section c: clustering -------------------------------------------------------------------


def section_clustering(cfg: Config) -> str:
    out = ["## c. Clustering quality and time", ""]
    module = _import_benchmark("bench_clustering")
    if module is None or not hasattr(module, "run"):
        return "\n".join(
            [
                *out,
                "Skipped: benchmarks/bench_clustering.py (with run()) not "
                "found next to the package.",
                "",
            ]
        )
    names = [n for n in cfg.datasets if _available(n) is None]
    mapping = {"digits": "digits", "mnist5k": "mnist5k", "fashion": "fashion"}
    rows: list[dict[str, Any]] = []
    for name in names:
        _say(f"clustering: {name}")
        seeds = 1 if name == "fashion" else cfg.cluster_seeds
        rows += module.run([mapping[name]], seeds, online=not cfg.quick)
    render = getattr(module, "to_markdown", None)
    table = (
        render(rows)
        if render is not None
        else _table(list(rows[0]), [list(r.values()) for r in rows])
        if rows
        else "(no rows)"
    )
    out += [
        "From `benchmarks/bench_clustering.py` (medians over "
        f"{cfg.cluster_seeds} seed(s)"
        + ("; 1 seed on Fashion-MNIST-70k" if "fashion" in names else "")
        + f"). K = 10.{' Quick mode: batch protocol only.' if cfg.quick else ''}",
        "",
        table,
        "",
    ]
    return "\n".join(out)


# --- section d: scaling ----------------------------------------------------------------------


def _scaling_data(n: int, d: int, seed: int) -> np.ndarray:
    if _available("fashion") is None:
        X = _load("fashion")[0]
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
        seconds = _best_time(lambda X=X, centers=centers: wc.explain(centers, X), seconds)
        net = wc.neuralize(centers)
        _, t_pred = _timed(lambda net=net, X=X: net.predict(X))
        out.append([seconds, t_pred, float(mem.delta), float(fixed)])
        del X
        gc.collect()
    return out


def section_scaling(cfg: Config) -> str:
    import concurrent.futures as cf
    import multiprocessing as mp

    d = 784
    src = "Fashion-MNIST" if _available("fashion") is None else "uniform random data"
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
    _say(f"scaling: {len(jobs)} runs in a fresh process")
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
    out += ["### Against n", "", _table(headers, rows[:n_rows]), ""]
    out += ["### Against K", "", _table(headers, rows[n_rows:]), ""]
    if not all(r[3] for r in results):
        out += ["(glibc's mmap threshold could not be fixed here: memory figures may be low.)", ""]
    return "\n".join(out)


# --- entry point -----------------------------------------------------------------------------


# --- sections e and f: NEON against KMeans.predict; a 2 GB array on disk -----------------


def section_predict_ratio(cfg: Config) -> str:
    out = ["## e. NEON against KMeans.predict (cost, loop speed-up, memory)", ""]
    module = _import_benchmark("bench_neon")
    name = "fashion" if _available("fashion") is None else "mnist5k"
    if module is None:
        return "\n".join([*out, "Skipped: benchmarks/bench_neon.py not found.", ""])
    _say(f"NEON vs predict: {name}")
    row = module.run(
        {"fashion": "fashion-mnist"}.get(name, name),
        repeats=3 if cfg.quick else 9,
        loop_points=50 if cfg.quick else 300,
    )
    label = _LABELS.get(name, name)
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
    module = _import_benchmark("bench_memory")
    if module is None:
        return "\n".join([*out, "Skipped: benchmarks/bench_memory.py not found.", ""])
    size = 0.25 if cfg.quick else 2.0
    _say(f"on-disk memory: {size} GB")
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


RUNNERS: dict[str, Callable[[Config], str]] = {
    "a": section_speed,
    "b": section_faithfulness,
    "c": section_clustering,
    "d": section_scaling,
    "e": section_predict_ratio,
    "f": section_disk_memory,
}


def _summary(cfg: Config) -> str:
    missed = [t for t in cfg.targets if not t[5]]
    rows = [
        [sec, _LABELS.get(ds, ds), model, target, measured, _mark(ok)]
        for sec, ds, model, target, measured, ok in cfg.targets
    ]
    return "\n".join(
        [
            "## Targets",
            "",
            f"{len(cfg.targets) - len(missed)} of {len(cfg.targets)} targets met in this run.",
            "",
            _table(["section", "dataset", "model", "target", "measured", "status"], rows),
            "",
        ]
    )


def _parse_sections(text: str) -> list[str]:
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in SECTIONS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"--sections takes a comma-separated subset of {','.join(SECTIONS)}, got {text!r}"
        )
    return sorted(set(parts), key=SECTIONS.index)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and write the markdown report; returns 0."""
    parser = argparse.ArgumentParser(
        prog="whyclust bench", description="Measure whyclust and write BENCHMARKS.md."
    )
    parser.add_argument("--quick", action="store_true", help="small subsamples (smoke test)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("BENCHMARKS.md"),
        help="output file (default: BENCHMARKS.md)",
    )
    parser.add_argument(
        "--sections",
        type=_parse_sections,
        default=list(DEFAULT_SECTIONS),
        help="comma-separated subset of a,b,c,d,e,f (default: a-e; f writes 2 GB to disk)",
    )
    parser.add_argument(
        "--datasets", default=None, help="comma-separated subset of digits,mnist5k,fashion"
    )
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    cfg = Config.make(args.quick)
    if args.datasets:
        names = tuple(p.strip() for p in args.datasets.split(",") if p.strip())
        bad = [p for p in names if p not in _LABELS]
        if bad or not names:
            parser.error(f"--datasets takes a subset of {','.join(_LABELS)}, got {args.datasets!r}")
        cfg.datasets = names
    parts = [header(args_list, cfg)]
    start = time.perf_counter()
    for key in args.sections:
        t0 = time.perf_counter()
        parts.append(RUNNERS[key](cfg))
        parts.append(f"_Section {key} took {time.perf_counter() - t0:.1f} s._\n")
    if cfg.targets:
        parts.append(_summary(cfg))
    parts.append(f"Total time: {time.perf_counter() - start:.1f} s.\n")
    text = "\n\n".join(parts)
    from whyclust.io import atomic_path

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(text)
    _say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
