"""Section b of ``whyclust bench``: deletion AUC of every method, k-means and TELL.

Writes only that table (with the machine / versions header); the implementation lives in
:mod:`whyclust.bench` so that ``whyclust bench`` runs all sections in one go. Usage::

    python benchmarks/bench_faithfulness.py [--quick] [--datasets digits,mnist5k,fashion]
        [--out benchmarks/out/faithfulness.md]
"""

from __future__ import annotations

import sys

from whyclust.bench import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", "benchmarks/out/faithfulness.md"]
    raise SystemExit(main(["--sections", "b", *args]))
