"""Section a of ``whyclust bench``: explanation speed of NEON against the baselines.

Writes only that table (with the machine / versions header); the implementation lives in
:mod:`whyclust.bench` so that ``whyclust bench`` runs all sections in one go. Usage::

    python benchmarks/bench_explain.py [--quick] [--datasets digits,mnist5k,fashion]
        [--out benchmarks/out/explain.md]
"""

from __future__ import annotations

import sys

from whyclust.bench import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", "benchmarks/out/explain.md"]
    raise SystemExit(main(["--sections", "a", *args]))
