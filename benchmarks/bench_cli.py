"""Wall time of ``whyclust explain`` on a 200-row CSV, each run a fresh process.

Writes scikit-learn's wine table plus its first 22 rows again (200 rows x 13 columns) to a
temporary CSV, fits ``whyclust fit -k 3`` on it (standard scaling, k-means), then runs
``whyclust explain MODEL CSV -o out.csv`` ``--repeats`` times and prints the median wall
time, with the time of a process that only imports what the command imports and of one
that also imports scikit-learn, for reference. Usage::

    python benchmarks/bench_cli.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    import pandas as pd
    from sklearn.datasets import load_wine

    exe = str(Path(sys.executable).with_name("whyclust"))
    with tempfile.TemporaryDirectory() as tmp:
        wine = load_wine(as_frame=True).frame.drop(columns="target")
        csv, model, out = f"{tmp}/w200.csv", f"{tmp}/m.whyclust", f"{tmp}/out.csv"
        pd.concat([wine, wine.iloc[:22]]).to_csv(csv, index=False)
        subprocess.run([exe, "fit", csv, "-k", "3", "-o", model, "-q"], check=True)
        runs = {
            "whyclust explain (200 x 13 CSV)": [exe, "explain", model, csv, "-o", out, "-q"],
            "python -c 'import numpy, pandas, click, whyclust.cli'":
                [sys.executable, "-c", "import numpy, pandas, click, whyclust.cli"],
            "the same + import sklearn.base":
                [sys.executable, "-c", "import numpy, pandas, click, whyclust.cli, sklearn.base"],
        }  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(a.repeats):
            for k, cmd in runs.items():
                times[k].append(_wall(cmd))
    print(f"median of {a.repeats} fresh processes each, interleaved")
    print("| process | wall time (s) |")
    print("|---|---|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
