"""NEON throughput and TELL epoch time on the CPU and on a CUDA GPU, in one table.

Fashion-MNIST-70k (d=784, K=10, float32):
  - NEON for a k-means model (``wc.explain(km, X, device=...)``; host-to-device copies of
    the batches and the copy of the relevance back are included in the GPU time);
  - ``KMeans.predict`` of scikit-learn on the CPU, as the yardstick;
  - TELL with the paper's conv autoencoder: seconds per epoch (``fit`` with
    ``pretrain_epochs = max_iter = E`` divided by 2E, so k-means++ seeding on the features is
    included), on the first ``--tell-n`` images, and NEON through that conv encoder on the
    first ``--explain-n`` of them.
Rows for "cuda" are skipped (and say so) when ``torch.cuda.is_available()`` is False; the
CPU rows always run.

    .venv/bin/python benchmarks/bench_gpu.py [--repeats 3] [--tell-n 5000] [--tell-epochs 2]
        [--explain-n 1000] [--no-tell]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

import whyclust as wc


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def devices() -> list[str]:
    return ["cpu", "cuda"]


def _row(task: str, device: str, n: int, seconds: float | None, unit: str, note: str = "",
         **extra) -> dict:
    return {
        "task": task,
        "device": device,
        "n": n,
        "seconds": seconds,
        "throughput": None if not seconds else n / seconds,
        "unit": unit,
        "note": note,
        **extra,
    }


def run(repeats: int = 3, tell_n: int = 5000, tell_epochs: int = 2,
        with_tell: bool = True, explain_n: int = 1000) -> list[dict]:
    from sklearn.cluster import KMeans

    X, _ = wc.datasets.load_fashion_mnist()
    X = X.reshape(X.shape[0], -1).astype(np.float32)
    n = X.shape[0]
    km = KMeans(n_clusters=10, n_init=1, max_iter=50, random_state=0).fit(X)
    rows = [_row("KMeans.predict (scikit-learn)", "cpu", n,
                 _median_time(lambda: km.predict(X), repeats), "points/s")]
    ref = None
    for dev in devices():
        task = f"NEON k-means ({n:,} x {X.shape[1]}, K=10)"
        if dev == "cuda" and not torch.cuda.is_available():
            rows.append(_row(task, dev, n, None, "points/s", "skipped: no CUDA GPU"))
            continue
        wc.explain(km, X[:2048], device=dev)  # warm-up (CUDA context, kernels)
        seconds = _median_time(lambda dev=dev: wc.explain(km, X, device=dev), repeats)
        e = wc.explain(km, X, device=dev)
        if ref is None:
            ref = e
        diff = float(np.abs(e.relevance - ref.relevance).max() / np.abs(ref.logit).max())
        rows.append(_row(task, dev, n, seconds, "points/s", max_diff_vs_cpu=diff))

    if with_tell and hasattr(wc, "TELL"):
        rows += _tell_rows(X[:tell_n].reshape(-1, 1, 28, 28), tell_epochs, repeats, explain_n)
    return rows


def _tell_rows(images: np.ndarray, epochs: int, repeats: int, explain_n: int) -> list[dict]:
    rows: list[dict] = []
    n = images.shape[0]
    for dev in devices():
        task = f"TELL conv AE, s/epoch ({n:,} images)"
        m = min(n, explain_n)
        task_explain = f"NEON through TELL conv encoder ({m:,} images)"
        if dev == "cuda" and not torch.cuda.is_available():
            rows.append(_row(task, dev, n, None, "images/s trained", "skipped: no CUDA GPU"))
            rows.append(_row(task_explain, dev, m, None, "points/s", "skipped: no CUDA GPU"))
            continue
        model = wc.TELL(n_clusters=10, encoder="conv", pretrain_epochs=epochs, max_iter=epochs,
                        n_init=1, device=dev, random_state=0)
        t0 = time.perf_counter()
        model.fit(images)
        _sync()
        per_epoch = (time.perf_counter() - t0) / (2 * epochs)
        rows.append(_row(task, dev, n, per_epoch, "images/s trained",
                         note=f"mean over {2 * epochs} epochs"))
        wc.explain(model, images[:64], device=dev)  # warm-up
        seconds = _median_time(
            lambda model=model, d=dev, m=m: wc.explain(model, images[:m], device=d), repeats
        )
        rows.append(_row(task_explain, dev, m, seconds, "points/s"))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| task | device | time | throughput | note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["seconds"] is None:
            lines.append(f"| {r['task']} | {r['device']} | - | - | {r['note']} |")
            continue
        note = r["note"]
        if "max_diff_vs_cpu" in r and r["device"] != "cpu":
            note = (note + "; " if note else "") + (
                f"max |R_cuda - R_cpu| / max|f| = {r['max_diff_vs_cpu']:.1e}"
            )
        lines.append(
            f"| {r['task']} | {r['device']} | {r['seconds'] * 1e3:,.1f} ms | "
            f"{r['throughput']:,.1f} {r['unit']} | {note} |"
        )
    gpu = "a CUDA GPU: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else (
        "no CUDA GPU"
    )
    lines += ["", f"Machine: {torch.get_num_threads()} torch CPU threads, {gpu}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tell-n", type=int, default=5000)
    parser.add_argument("--tell-epochs", type=int, default=2)
    parser.add_argument("--explain-n", type=int, default=1000,
                        help="images explained through the TELL conv encoder")
    parser.add_argument("--no-tell", action="store_true")
    args = parser.parse_args(argv)
    print(markdown(run(args.repeats, args.tell_n, args.tell_epochs, not args.no_tell,
                       args.explain_n)))


if __name__ == "__main__":
    main()
