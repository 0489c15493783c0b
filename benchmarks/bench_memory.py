"""Peak memory of predicting and explaining a 2 GB on-disk array, batch by batch.

Writes a float32 array of ``--size-gb`` GiB (d=784, K=10 blob clusters) to a temporary
directory as ``.npy`` (read back as ``np.memmap``) and, if zarr is installed, as an
uncompressed zarr array; then, each in a fresh subprocess, runs
``whyclust.scale.predict_stream`` and ``whyclust.scale.explain_to`` (relevance written to a
second on-disk array of the same size) while a thread samples the process's memory. For
comparison, a smaller array (``--small-mb``) is explained in memory with ``wc.explain``.

Memory is reported several ways, because a memory-mapped file confuses RSS:
  - peak RSS: ``VmHWM``, the kernel's exact high-water mark of the process's resident set,
    including shared libraries and any mapped file pages (torch alone is ~550 MB of it
    right after ``import torch``); this is the number the 500 MB target applies to;
  - growth of RSS, anonymous RSS (RssAnon: heap and tensors, what the process really
    allocated) and file-backed RSS (RssFile: mapped pages of libraries and of the memmaps,
    which the kernel can drop at any time because they are backed by the page cache)
    over the baseline taken after all imports;
  - USS (pages mapped by this process only, via psutil), sampled less often.
A k-means model is streamed by numpy alone (the array-API engine), so the ``memmap``
and ``zarr`` processes never import torch; ``memmap-torch`` runs the same file through the
torch engine for comparison.

    .venv/bin/python benchmarks/bench_memory.py [--size-gb 2] [--small-mb 256] [--dir DIR]

The temporary files are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

D = 784
K = 10


# -- measurement (child side) ---------------------------------------------------------


def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    pattern = r"^(VmRSS|VmHWM|RssAnon|RssFile):\s+(\d+)"
    return {k: int(v) * 1024 for k, v in re.findall(pattern, text, re.M)}


class MemorySampler:
    """Peak VmRSS / RssAnon / RssFile (every ``interval`` s) and USS (every 20 samples)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.baseline = _status()
        self.baseline["USS"] = self.proc.memory_full_info().uss
        self.peak = dict(self.baseline)

    def __enter__(self) -> MemorySampler:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _sample(self, with_uss: bool) -> None:
        now = _status()
        if with_uss:
            now["USS"] = self.proc.memory_full_info().uss
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], v)

    def _watch(self) -> None:
        i = 0
        while not self._stop.is_set():
            self._sample(i % 20 == 0)
            i += 1
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(True)

    def growth_mb(self, key: str) -> float:
        return (self.peak[key] - self.baseline[key]) / 2**20


def _new_zarr(path, shape, chunks):
    """An uncompressed float32 zarr array (random floats do not compress)."""
    import zarr

    if hasattr(zarr, "create_array"):  # zarr >= 3
        return zarr.create_array(str(path), shape=shape, chunks=chunks, dtype="float32",
                                 compressors=None)
    return zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype="float32",
                           compressor=None)


def _take_rows(arr, rows: np.ndarray) -> np.ndarray:
    if hasattr(arr, "get_orthogonal_selection"):  # zarr
        return np.asarray(arr.get_orthogonal_selection((rows, slice(None))))
    return np.asarray(arr[rows])


def child(kind: str, x_path: str, centers_path: str, out_path: str) -> dict:
    """Runs in a fresh process: predict + explain one input, report memory and checks.

    ``memmap`` and ``zarr`` stream with the model given as its centroid array, which
    :mod:`whyclust.scale` serves with numpy alone (torch is never imported);
    ``memmap-torch`` streams the same file through the torch engine (a neuralized network)
    and ``in-memory`` loads a smaller array and calls ``wc.explain``, both with torch.
    """
    from whyclust.scale import explain_to, predict_stream

    centers = np.load(centers_path)
    model: object = centers
    if kind in ("memmap-torch", "in-memory"):
        import torch

        import whyclust as wc

        torch.set_num_threads(2)
        model = wc.neuralize(centers)
        wc.explain(model, np.zeros((4, D), np.float32))  # warm up torch kernels
    if kind in ("memmap", "memmap-torch"):
        X = np.load(x_path, mmap_mode="r")
        out_arr = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32,
                                            shape=X.shape)
    elif kind == "zarr":
        import zarr

        X = zarr.open_array(x_path, mode="r")
        out_arr = _new_zarr(out_path, X.shape, X.chunks)
    elif kind != "in-memory":
        raise ValueError(kind)
    with MemorySampler() as mem:
        if kind == "in-memory":
            X = np.load(x_path)  # loading counts: in memory, X itself is resident
        t0 = time.perf_counter()
        labels = predict_stream(model, X) if kind != "in-memory" else model.predict(X)
        t1 = time.perf_counter()
        if kind == "in-memory":
            e = wc.explain(model, X)
        else:
            e = explain_to(model, X, out_arr)
        t2 = time.perf_counter()
    high_water = _status()["VmHWM"]  # the kernel's exact peak of this process
    torch_used = "torch" in sys.modules

    # checks, after the measurement: random rows against the in-memory explanation (torch
    # engine), and conservation (sum of relevance = logit) over every row, in batches
    import whyclust as wc

    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(X.shape[0], size=min(4096, X.shape[0]), replace=False))
    ref = wc.explain(wc.neuralize(centers), _take_rows(X, rows), beta=e.beta)
    rel = _take_rows(e.relevance, rows)
    scale = float(np.abs(ref.logit).max())
    sample_err = float(np.abs(rel - ref.relevance).max() / scale)
    cons = 0.0
    step = 65536
    for start in range(0, X.shape[0], step):
        s = np.asarray(e.relevance[start : start + step]).sum(1, dtype=np.float64)
        cons = max(cons, float(np.abs(s - e.logit[start : start + step]).max()))
    return {
        "kind": kind,
        "torch": torch_used,
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "input_mb": X.shape[0] * X.shape[1] * 4 / 2**20,
        "predict_s": t1 - t0,
        "explain_s": t2 - t1,
        "peak_rss_mb": high_water / 2**20,
        "baseline_rss_mb": mem.baseline["VmRSS"] / 2**20,
        "rss_growth_mb": mem.growth_mb("VmRSS"),
        "anon_growth_mb": mem.growth_mb("RssAnon"),
        "file_growth_mb": mem.growth_mb("RssFile"),
        "uss_growth_mb": mem.growth_mb("USS"),
        "labels_match_explain": bool((labels == e.cluster).all()),
        "max_rel_error_vs_in_memory": sample_err,
        "max_conservation_error": cons / float(np.abs(e.logit).max()),
    }


# -- data and orchestration (parent side) ---------------------------------------------


def _write_blobs(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """Blob data written batch by batch into an .npy memmap; returns the true centers."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(K, D)).astype(np.float32)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    step = 32768
    for start in range(0, n, step):
        m = min(step, n - start)
        block = rng.standard_normal((m, D), dtype=np.float32)
        block += centers[rng.integers(0, K, m)]
        x[start : start + m] = block
    x.flush()
    del x
    return centers


def make_data(tmp: str, size_gb: float, small_mb: float, zarr_too: bool) -> dict:
    """Runs in its own process: writes the arrays and the k-means centers."""
    from sklearn.cluster import KMeans

    tmp_path = Path(tmp)
    n = int(size_gb * 2**30 // (D * 4))
    x_path = tmp_path / "x.npy"
    _write_blobs(x_path, n)
    X = np.load(x_path, mmap_mode="r")
    fit_rows = np.sort(np.random.default_rng(1).choice(n, size=min(n, 20000), replace=False))
    km = KMeans(K, n_init=1, random_state=0).fit(np.asarray(X[fit_rows]))
    np.save(tmp_path / "centers.npy", km.cluster_centers_.astype(np.float32))
    made = {"zarr": False}
    if zarr_too:
        try:
            z = _new_zarr(tmp_path / "x.zarr", (n, D), (8192, D))
        except ImportError:
            z = None
        if z is not None:
            for start in range(0, n, 65536):
                z[start : start + 65536] = X[start : start + 65536]
            made["zarr"] = True
    m = int(small_mb * 2**20 // (D * 4))
    np.save(tmp_path / "small.npy", np.asarray(X[:m]))
    return made


def _subprocess(*args: str) -> dict:
    cmd = [sys.executable, __file__, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(size_gb: float = 2.0, small_mb: float = 256.0, workdir: str | None = None,
        formats: tuple[str, ...] = ("memmap", "zarr", "memmap-torch")) -> list[dict]:
    """Create the on-disk arrays, measure each format in a subprocess, delete the files.

    Every step with the data runs in its own process: this one stays small, because a
    child's ``ru_maxrss`` starts from its parent's peak when it is spawned (vfork + exec
    keep the high-water mark of the parent's address space).
    """
    tmp = Path(tempfile.mkdtemp(prefix="whyclust-bench-memory-", dir=workdir))
    rows: list[dict] = []
    try:
        made = _subprocess("--make", str(tmp), str(size_gb), str(small_mb),
                           str(int("zarr" in formats)))
        centers = str(tmp / "centers.npy")
        for kind in ("memmap", "memmap-torch"):
            if kind in formats:
                rows.append(_subprocess("--child", kind, str(tmp / "x.npy"), centers,
                                        str(tmp / "relevance.npy")))
                (tmp / "relevance.npy").unlink()
        if made["zarr"]:
            rows.append(_subprocess("--child", "zarr", str(tmp / "x.zarr"), centers,
                                    str(tmp / "relevance.zarr")))
            shutil.rmtree(tmp / "relevance.zarr")
        rows.append(_subprocess("--child", "in-memory", str(tmp / "small.npy"), centers, ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| input | engine | n x d | size | predict | explain | peak RSS | baseline RSS | "
        "RSS growth | anon growth | file growth | USS growth | err vs in-memory | "
        "conservation err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {'torch' if r['torch'] else 'numpy'} | {r['n']:,} x {r['d']} | "
            f"{r['input_mb']:,.0f} MB | "
            f"{r['predict_s']:.1f} s | {r['explain_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | "
            f"{r['baseline_rss_mb']:.0f} MB | {r['rss_growth_mb']:.0f} MB | "
            f"{r['anon_growth_mb']:.0f} MB | {r['file_growth_mb']:.0f} MB | "
            f"{r['uss_growth_mb']:.0f} MB | {r['max_rel_error_vs_in_memory']:.1e} | "
            f"{r['max_conservation_error']:.1e} |"
        )
    streamed = [r for r in rows if r["kind"] in ("memmap", "zarr")]
    if streamed:
        peak = max(r["peak_rss_mb"] for r in streamed)
        worst = max(r["rss_growth_mb"] for r in streamed)
        lines += [
            "",
            f"Streaming a k-means model (numpy engine, torch never imported): peak RSS "
            f"{peak:.0f} MB (VmHWM, the kernel's high-water mark of the process) against the "
            f"target of 500 MB: {'met' if peak < 500 else '**missed**'}; the work adds at "
            f"most {worst:.0f} MB over the post-import baseline.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(child(*argv[1:5])))
        return
    if argv and argv[0] == "--make":
        tmp, size_gb, small_mb, zarr_too = argv[1:5]
        print(json.dumps(make_data(tmp, float(size_gb), float(small_mb), zarr_too == "1")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--small-mb", type=float, default=256.0)
    parser.add_argument("--dir", default=None, help="where the temporary arrays go")
    parser.add_argument("--formats", default="memmap,zarr,memmap-torch")
    args = parser.parse_args(argv)
    rows = run(args.size_gb, args.small_mb, args.dir, tuple(args.formats.split(",")))
    print(markdown(rows))


if __name__ == "__main__":
    main()
