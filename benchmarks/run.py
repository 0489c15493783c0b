"""Every benchmark table of whyclust, measured side by side in one run: writes BENCHMARKS.md.

Sections: a. explanation speed; b. faithfulness of the explanations (deletion / insertion
under several replacements, the assignment-flip fraction, Quantus metrics, conservation,
deep models); c. clustering quality and time; d. scaling of NEON against n and K;
e. NEON against KMeans.predict; f. predict and explain a 2 GB array on disk.

Usage (from the repository root)::

    python benchmarks/run.py [--quick] [--out BENCHMARKS.md] [--sections a,b,c,d,e,f]
        [--datasets digits,mnist5k,fashion]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import DEFAULT_SECTIONS, LABELS, SECTIONS, Config, header, mark, say, table
from section_faithfulness import section_faithfulness
from section_other import (
    section_clustering,
    section_disk_memory,
    section_predict_ratio,
    section_scaling,
)
from section_speed import section_speed

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
        [sec, LABELS.get(ds, ds), model, target, measured, mark(ok)]
        for sec, ds, model, target, measured, ok in cfg.targets
    ]
    return "\n".join(
        [
            "## Targets",
            "",
            f"{len(cfg.targets) - len(missed)} of {len(cfg.targets)} targets met in this run.",
            "",
            table(["section", "dataset", "model", "target", "measured", "status"], rows),
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
        prog="python benchmarks/run.py", description="Measure whyclust and write BENCHMARKS.md."
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
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="section b: keep each model's results in this folder and reuse them",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="section b: only fill the --cache (no Quantus / ground-truth tables)",
    )
    parser.add_argument(
        "--seeds",
        default=None,
        help="section b: comma-separated model seeds to run (default: all)",
    )
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    cfg = Config.make(args.quick)
    cfg.cache, cfg.partial = args.cache, args.partial
    if args.seeds:
        cfg.seeds = tuple(int(p) for p in args.seeds.split(",") if p.strip())
    if args.datasets:
        names = tuple(p.strip() for p in args.datasets.split(",") if p.strip())
        bad = [p for p in names if p not in LABELS]
        if bad or not names:
            parser.error(f"--datasets takes a subset of {','.join(LABELS)}, got {args.datasets!r}")
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
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
