"""The first explanation in a fresh process against the first ``KMeans.predict``.

Each measurement runs in a new Python process (nothing imported, nothing cached), so that
import costs count as a user meets them: ``python -c "import whyclust; wc.explain(km, X)"``.
Both calls get the same 70k x 784 float32 array (Fashion-MNIST when the Debian package is
installed, else uniform noise of that shape) and a KMeans(K=10) fitted beforehand; the
processes alternate so that machine noise hits both alike. Prints the medians, their ratio,
the steady-state ratio (second call in the same process) and whether torch was imported.
whyclust is byte-compiled first, as ``pip install`` does for scikit-learn and for a wheel
(an editable checkout under ``PYTHONDONTWRITEBYTECODE`` would compile it in every process).

    .venv/bin/python benchmarks/bench_first_call.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

_SETUP = """
import numpy as np
from sklearn.cluster import KMeans
import whyclust as wc
try:
    X = wc.datasets.load_fashion_mnist()[0].reshape(70000, -1).astype(np.float32)
except Exception:
    X = np.random.default_rng(0).random((70000, 784), dtype=np.float32)
np.save(DIR + "/X.npy", X)
km = KMeans(10, n_init=1, random_state=0).fit(X[:10000])
wc.save(km, DIR + "/km.whyclust")
"""

_RUN = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
X = np.load(DIR + "/X.npy")
import whyclust as wc
km = wc.load(DIR + "/km.whyclust")
t1 = time.perf_counter()
if WHAT == "predict":
    km.predict(X)
else:
    wc.explain(km, X)
t2 = time.perf_counter()
if WHAT == "predict":
    km.predict(X)
else:
    wc.explain(km, X)
t3 = time.perf_counter()
print(json.dumps({"first": t2 - t1, "steady": t3 - t2, "torch": "torch" in sys.modules}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import compileall
    import pathlib

    import whyclust

    compileall.compile_dir(pathlib.Path(whyclust.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"DIR = {tmp!r}\n"
        subprocess.run([sys.executable, "-c", prefix + _SETUP], check=True)
        runs: dict[str, list[dict]] = {"predict": [], "explain": []}
        for _ in range(args.repeats):
            for what in runs:
                code = prefix + f"WHAT = {what!r}\n" + _RUN
                out = subprocess.run([sys.executable, "-c", code], check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                runs[what].append(json.loads(out.strip().splitlines()[-1]))
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("first", "steady")}
           for w, rs in runs.items()}  # fmt: skip
    print("| call | first call in a fresh process (s) | second call (s) |")
    print("|---|---|---|")
    for what in runs:
        print(f"| {what} | {med[what]['first']:.3f} | {med[what]['steady']:.3f} |")
    first = med["explain"]["first"] / med["predict"]["first"]
    steady = med["explain"]["steady"] / med["predict"]["steady"]
    print(f"\nfirst explain / first predict = {first:.2f}x; steady = {steady:.2f}x;"
          f" torch imported by explain: {any(r['torch'] for r in runs['explain'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
