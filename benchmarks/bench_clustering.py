"""TELL against scikit-learn KMeans / MiniBatchKMeans and faiss k-means: ACC, NMI, ARI, time.

Protocols
---------
* ``batch``: every method fits all points; labels are scored against the classes.
* ``online`` (TELL paper, Table 5): shuffle, fit on the first 1,000 points, then stream the
  rest once in batches of 256 (``TELL.partial_fit`` / ``MiniBatchKMeans.partial_fit``);
  ``KMeans`` fitted on the same 1,000 points only predicts. All points are scored after
  the stream.
* ``conv`` (``--conv``): TELL with the paper's convolutional autoencoder on images, with
  the recipe's parameters or (``--conv-library-defaults``) only ``n_clusters`` and
  ``encoder="conv"``.

Datasets: digits, MNIST-5k and Fashion-MNIST (K = 10), and the standardized tabular sets
wine, breast cancer and iris (K = number of classes; batch protocol only).

Numbers are medians over seeds. Usage::

    python benchmarks/bench_clustering.py --seeds 5 [--datasets wine breast_cancer iris
        digits mnist5k fashion]
        [--online-seeds 20] [--no-batch] [--no-online] [--conv [--conv-pretrain 150
        --conv-epochs 40 --conv-batch-size 128 --conv-augment affine|none
        --conv-weight 1 --conv-loss kl|hard --conv-seeds 0 1 2 | --conv-library-defaults]]
        [--out benchmarks/out/clustering.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("wine", "breast_cancer", "iris", "digits", "mnist5k", "fashion")
TABULAR = ("wine", "breast_cancer", "iris")
# conv defaults: the MNIST-5k recipe of BENCHMARKS.md (median ACC >= 0.85 over 5 seeds)
CONV_RECIPE: dict[str, Any] = {
    "pretrain": 150, "epochs": 40, "batch_size": 128, "augment": "affine", "weight": 1.0,
    "loss": "kl",
}  # fmt: skip


def load(name: str, *, as_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    from whyclust import datasets

    if name in TABULAR:
        import sklearn.datasets
        from sklearn.preprocessing import StandardScaler

        data = getattr(sklearn.datasets, f"load_{name}")()
        return StandardScaler().fit_transform(data.data), data.target
    loaders: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
        "digits": datasets.load_digits,
        "mnist5k": datasets.load_mnist5k,
        "fashion": datasets.load_fashion_mnist,
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(loaders)}")
    return loaders[name](as_images=as_images)


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from whyclust import metrics

    return {
        "acc": metrics.cluster_accuracy(y, pred),
        "nmi": metrics.nmi(y, pred),
        "ari": metrics.ari(y, pred),
    }


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    pred = fn()
    return np.asarray(pred), time.perf_counter() - start


def _faiss_kmeans(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(X.shape[1], k, niter=25, nredo=1, seed=seed, verbose=False)
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    km.train(Xf)
    return km.index.search(Xf, 1)[1][:, 0]


def batch_methods(k: int, seed: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from whyclust.models.tell import TELL

    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "TELL (raw, euclidean)": lambda X: TELL(k, metric="euclidean", random_state=seed)
        .fit(X).labels_,
        "TELL (raw, cosine)": lambda X: TELL(k, metric="cosine", random_state=seed)
        .fit(X).labels_,
        "KMeans(n_init=10)": lambda X: KMeans(k, n_init=10, random_state=seed).fit(X).labels_,
        "MiniBatchKMeans": lambda X: MiniBatchKMeans(
            k, n_init=3, batch_size=1024, random_state=seed
        ).fit(X).labels_,
    }
    try:
        import faiss  # noqa: F401

        methods["faiss k-means"] = lambda X: _faiss_kmeans(X, k, seed)
    except ImportError:  # pragma: no cover
        pass
    return methods


def run_batch(name: str, seeds: Sequence[int]) -> list[dict[str, Any]]:
    X, y = load(name)
    k = int(np.unique(y).size)
    rows = []
    for seed in seeds:
        for method, fit in batch_methods(k, seed).items():
            pred, seconds = _timed(lambda fit=fit: fit(X))
            rows.append({"dataset": name, "protocol": "batch", "method": method, "seed": seed,
                         "time_s": seconds, **_scores(y, pred)})  # fmt: skip
    return rows


def _online_tell(k, seed, first, rest, X, batch, metric="euclidean") -> np.ndarray:
    from whyclust.models.tell import TELL

    # 1,000 points give 4 steps per epoch: train the start model longer (cheap), with as
    # many k-means++ restarts as the KMeans(n_init=10) it is compared with
    model = TELL(k, metric=metric, max_iter=50, n_init=10, random_state=seed).fit(first)
    for s in range(0, rest.shape[0], batch):
        model.partial_fit(rest[s : s + batch])
    return model.predict(X)


def _online_minibatch(k, seed, first, rest, X, batch) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(k, n_init=3, random_state=seed, batch_size=batch).fit(first)
    for s in range(0, rest.shape[0], batch):
        model.partial_fit(rest[s : s + batch])
    return model.predict(X)


def _online_kmeans(k, seed, first, X) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit(first).predict(X)


def run_online(
    name: str, seeds: Sequence[int], k: int = 10, n_first: int = 1000, batch: int = 256
) -> list[dict[str, Any]]:
    X0, y0 = load(name)
    rows = []
    for seed in seeds:
        order = np.random.RandomState(seed).permutation(X0.shape[0])
        X, y = X0[order], y0[order]
        first, rest = X[:n_first], X[n_first:]

        methods = {
            "TELL partial_fit (euclidean; start: 50 epochs, 10 restarts)": partial(
                _online_tell, k, seed, first, rest, X, batch, "euclidean"
            ),
            "TELL partial_fit (cosine; start: 50 epochs, 10 restarts)": partial(
                _online_tell, k, seed, first, rest, X, batch, "cosine"
            ),
            "MiniBatchKMeans partial_fit": partial(
                _online_minibatch, k, seed, first, rest, X, batch
            ),
            "KMeans on first 1,000 (predict only)": partial(_online_kmeans, k, seed, first, X),
        }
        for method, fn in methods.items():
            pred, seconds = _timed(fn)
            rows.append({"dataset": name, "protocol": "online", "method": method, "seed": seed,
                         "time_s": seconds, **_scores(y, pred)})  # fmt: skip
    return rows


def run_conv(
    name: str,
    seeds: Sequence[int],
    k: int = 10,
    pretrain_epochs: int = 20,
    epochs: int = 20,
    device: str = "cpu",
    n_samples: int | None = None,
    batch_size: int = 256,
    augment: str | None = None,
    cluster_weight: float = 0.01,
    cluster_loss: str = "hard",
    progress: Callable[[str], None] | None = None,
    library_defaults: bool = False,
) -> list[dict[str, Any]]:
    """TELL with the paper's conv autoencoder; wall and CPU seconds of each seed's fit.

    ``library_defaults``: only ``n_clusters``, ``encoder`` and the seed are passed (the
    schedule arguments are ignored), as a new user would call it."""
    from whyclust.models.tell import TELL

    X, y = load(name, as_images=True)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    say = progress or (lambda _msg: None)
    rows = []
    for seed in seeds:
        if library_defaults:
            model = TELL(k, encoder="conv", device=device, random_state=seed)
        else:
            model = TELL(k, encoder="conv", pretrain_epochs=pretrain_epochs, max_iter=epochs,
                         batch_size=batch_size, device=device, augment=augment,
                         cluster_weight=cluster_weight, cluster_loss=cluster_loss,
                         random_state=seed)  # fmt: skip
        cpu = time.process_time()
        pred, seconds = _timed(lambda model=model: model.fit(X).labels_)
        cpu = time.process_time() - cpu
        method = "TELL(encoder='conv'), library defaults" if library_defaults else (
            f"TELL conv ({pretrain_epochs}+{epochs} epochs, batch {batch_size}, "
            f"lambda {cluster_weight:g}, {cluster_loss} loss"
            f"{', augment ' + augment if augment else ''}, {device})"
        )
        row = {"dataset": name, "protocol": "conv", "method": method, "seed": seed,
               "time_s": seconds, "cpu_s": cpu, "loss": model.loss_,
               **_scores(y, pred)}  # fmt: skip
        say(f"conv {name} seed {seed}: ACC {row['acc']:.4f} NMI {row['nmi']:.4f} "
            f"ARI {row['ari']:.4f} wall {seconds:.0f} s CPU {cpu:.0f} s")  # fmt: skip
        rows.append(row)
    return rows


def run(
    datasets: Sequence[str] = DATASETS,
    seeds: int | Sequence[int] = 5,
    *,
    batch: bool = True,
    online: bool = True,
    conv: bool = False,
    conv_datasets: Sequence[str] = ("mnist5k",),
    conv_pretrain: int = CONV_RECIPE["pretrain"],
    conv_epochs: int = CONV_RECIPE["epochs"],
    conv_seeds: int | Sequence[int] | None = None,
    conv_batch_size: int = CONV_RECIPE["batch_size"],
    conv_augment: str | None = CONV_RECIPE["augment"],
    conv_weight: float = CONV_RECIPE["weight"],
    conv_loss: str = CONV_RECIPE["loss"],
    conv_library_defaults: bool = False,
    online_seeds: int | Sequence[int] | None = None,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """All requested protocols; one row per (dataset, protocol, method, seed)."""
    def as_list(given: int | Sequence[int] | None) -> list[int]:
        if given is None:
            return as_list(seeds)
        return list(range(given)) if isinstance(given, int) else list(given)

    seed_list, conv_list, online_list = as_list(seeds), as_list(conv_seeds), as_list(online_seeds)
    say = progress or (lambda _msg: None)
    rows: list[dict[str, Any]] = []
    for name in datasets:
        if batch:
            say(f"batch {name}")
            rows += run_batch(name, seed_list)
        if online and name not in TABULAR:  # too few points for a stream after 1,000
            say(f"online {name}")
            rows += run_online(name, online_list)
    if conv:
        for name in conv_datasets:
            say(f"conv {name}")
            rows += run_conv(name, conv_list, pretrain_epochs=conv_pretrain,
                             epochs=conv_epochs, device=device,
                             batch_size=conv_batch_size, augment=conv_augment,
                             cluster_weight=conv_weight, cluster_loss=conv_loss,
                             progress=say,
                             library_defaults=conv_library_defaults)  # fmt: skip
    return rows


def limit_threads(n: int) -> None:
    """Give torch, BLAS / OpenMP (scikit-learn) and faiss the same number of threads."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Median over seeds of every (dataset, protocol, method), as a markdown table."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["protocol"], row["method"]), []).append(row)
    lines = [
        "| dataset | protocol | method | seeds | ACC | NMI | ARI | time (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (dataset, protocol, method), group in groups.items():
        med = {k: statistics.median(r[k] for r in group) for k in ("acc", "nmi", "ari", "time_s")}
        lines.append(
            f"| {dataset} | {protocol} | {method} | {len(group)} | {med['acc']:.4f} | "
            f"{med['nmi']:.4f} | {med['ari']:.4f} | {med['time_s']:.2f} |"
        )
    return "\n".join(lines + _online_head_to_head(rows))


def _online_head_to_head(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Seed-by-seed ACC of online TELL against KMeans on the first 1,000 points.

    Both see the same shuffle per seed, so the pairs are comparable; on MNIST the ACC of
    either varies by 0.1 between seeds, more than the medians of 5 seeds differ.
    """
    kmeans: dict[tuple[str, int], float] = {}  # (dataset, seed) -> ACC
    tell: dict[str, dict[tuple[str, int], float]] = {}  # TELL method -> (dataset, seed) -> ACC
    for row in rows:
        if row["protocol"] != "online":
            continue
        key = (row["dataset"], row["seed"])
        if row["method"].startswith("TELL"):
            tell.setdefault(row["method"], {})[key] = row["acc"]
        elif row["method"].startswith("KMeans"):
            kmeans[key] = row["acc"]
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for method, accs in tell.items():
        for key in sorted(accs.keys() & kmeans.keys()):
            pairs.setdefault((key[0], method), []).append((accs[key], kmeans[key]))
    if not pairs:
        return []
    lines = [
        "",
        "| dataset | TELL method | online seeds | TELL ahead of KMeans on first 1,000 | "
        "median ACC TELL / KMeans | mean ACC TELL / KMeans |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (dataset, method), pair in pairs.items():
        t_acc, k_acc = zip(*pair, strict=True)
        ahead = sum(t > k for t, k in pair)
        lines.append(
            f"| {dataset} | {method} | {len(pair)} | {ahead} | {statistics.median(t_acc):.4f} / "
            f"{statistics.median(k_acc):.4f} | {statistics.fmean(t_acc):.4f} / "
            f"{statistics.fmean(k_acc):.4f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--online-seeds", type=int, default=None,
                        help="seeds of the online protocol (default: --seeds)")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--no-online", action="store_true")
    parser.add_argument("--conv", action="store_true", help="also run TELL with the conv AE")
    parser.add_argument("--conv-datasets", nargs="+", default=["mnist5k"], choices=DATASETS)
    parser.add_argument("--conv-pretrain", type=int, default=CONV_RECIPE["pretrain"])
    parser.add_argument("--conv-epochs", type=int, default=CONV_RECIPE["epochs"])
    parser.add_argument("--conv-seeds", type=int, nargs="+", default=None,
                        help="one number: that many seeds from 0; several: those seeds")
    parser.add_argument("--conv-augment", choices=["affine", "none"],
                        default=CONV_RECIPE["augment"])
    parser.add_argument("--conv-weight", type=float, default=CONV_RECIPE["weight"],
                        help="TELL cluster_weight")
    parser.add_argument("--conv-loss", choices=["hard", "kl"], default=CONV_RECIPE["loss"],
                        help="TELL cluster_loss")
    parser.add_argument("--conv-batch-size", type=int, default=CONV_RECIPE["batch_size"])
    parser.add_argument("--conv-library-defaults", action="store_true",
                        help="TELL(n_clusters, encoder='conv') only; the --conv-* schedule "
                             "options are ignored")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="threads for every method (torch, BLAS/OpenMP, faiss); 1 = fair on a shared box",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    if args.conv_seeds and len(args.conv_seeds) == 1 and args.conv_seeds[0] < 1:
        parser.error("--conv-seeds N runs seeds 0..N-1, so N must be >= 1 (for seed 0: 1)")
    limit_threads(args.threads)
    rows = run(
        args.datasets,
        args.seeds,
        batch=not args.no_batch,
        online=not args.no_online,
        conv=args.conv,
        conv_datasets=args.conv_datasets,
        conv_pretrain=args.conv_pretrain,
        conv_epochs=args.conv_epochs,
        conv_seeds=(args.conv_seeds[0] if args.conv_seeds and len(args.conv_seeds) == 1
                    else args.conv_seeds),
        conv_batch_size=args.conv_batch_size,
        conv_augment=None if args.conv_augment == "none" else args.conv_augment,
        conv_weight=args.conv_weight,
        conv_loss=args.conv_loss,
        conv_library_defaults=args.conv_library_defaults,
        online_seeds=args.online_seeds,
        device=args.device,
        progress=lambda msg: print(f"... {msg}", flush=True),
    )
    table = to_markdown(rows)
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
