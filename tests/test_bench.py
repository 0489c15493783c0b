"""The benchmark runner (benchmarks/run.py): report structure, parsing and helpers.

The runner lives outside the package; the test imports it from the repository's
benchmarks/ folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import whyclust as wc

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402
import run  # noqa: E402
import section_faithfulness  # noqa: E402
import section_other  # noqa: E402
import section_speed  # noqa: E402

sys.path.remove(str(BENCHMARKS))


def test_quick_speed_section_writes_markdown(tmp_path, monkeypatch):
    # the slow baselines (occlusion, SHAP) are left out to keep the test short
    full = section_speed._speed_methods
    keep = {"neon", "gradient", "integrated_gradients"}
    monkeypatch.setattr(
        section_speed,
        "_speed_methods",
        lambda X, seed: {k: v for k, v in full(X, seed).items() if k in keep},
    )
    out = tmp_path / "sub" / "BENCH.md"
    assert run.main(["--quick", "--sections", "a", "--datasets", "digits", "--out", str(out)]) == 0
    text = out.read_text()
    for expected in (
        "# whyclust benchmarks",
        "- Date: ",
        "- Command: `python benchmarks/run.py --quick --sections a --datasets digits",
        "- Machine: ",
        "- Versions: Python ",
        "## a. Explanation speed",
        "### digits (1,797 x 64)",
        "| method | points timed | points/s |",
        "| NEON (whyclust) | 1,797 |",
        "_Section a took",
    ):
        assert expected in text
    assert "## b." not in text and "## d." not in text
    # the loop transcription is timed and compared with NEON
    assert "per-sample Python loop" in text
    from whyclust.explainers import available_methods

    if "integrated_gradients" in available_methods():
        assert "### Speed targets" in text
        assert "NEON >= 10x faster than integrated_gradients" in text
        assert "## Targets" in text and "targets met in this run" in text


def test_scaling_rows_in_process(monkeypatch):
    monkeypatch.setattr(section_other, "available", lambda name: "not loaded in this test")
    monkeypatch.setattr(section_other, "_fix_mmap_threshold", lambda: False)
    rows = section_other._scale_rows([(300, 3), (300, 7)], 784, 0)
    assert len(rows) == 2
    for seconds, t_pred, _, fixed in rows:
        assert seconds > 0 and t_pred > 0 and fixed == 0.0


def test_peak_rss_sees_an_allocation():
    with _common.PeakRSS() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, every page touched
        del block
    assert mem.delta >= 48 * 2**20


@pytest.mark.parametrize("bad", ["g", "", "a,z"])
def test_bad_sections(bad, tmp_path):
    with pytest.raises(SystemExit):
        run.main(["--sections", bad, "--out", str(tmp_path / "x.md")])
    assert not (tmp_path / "x.md").exists()


def test_bad_datasets(tmp_path):
    with pytest.raises(SystemExit):
        run.main(["--datasets", "cifar", "--out", str(tmp_path / "x.md")])


def test_table_markdown():
    text = _common.table(["a", "b"], [["x", 1.23456], ["y", float("nan")]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 1.235 |", "| y | n/a |"]


def test_neon_loop_matches_vectorised():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from neon_loop import neon_loop
    finally:
        sys.path.remove(str(BENCHMARKS))
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 6)) * 3
    X = rng.normal(size=(40, 6)) * 3
    for beta in (0.0, 0.7, np.inf):
        expected = wc.explain(centers, X, beta=beta).relevance
        np.testing.assert_allclose(neon_loop(centers, X, beta), expected, atol=1e-9)


def test_faithfulness_section_structure(monkeypatch):
    """k-means only, three methods: the table holds what deletion_curve computes."""
    from sklearn.cluster import KMeans

    from whyclust.evaluation import deletion_curve

    fitted = {}

    def models(name, Xtr, sz, seed, skip=frozenset()):
        fitted["model"] = KMeans(10, n_init=1, random_state=0).fit(Xtr)
        fitted["mean"] = Xtr.mean(0)
        yield "k-means (raw)", fitted["model"], False

    keep = ("NEON", "gradient", "random")
    methods = [m for m in section_faithfulness.METHODS if m[0] in keep]
    monkeypatch.setattr(section_faithfulness, "_models", models)
    monkeypatch.setattr(section_faithfulness, "METHODS", methods)
    monkeypatch.setattr(section_faithfulness, "_ground_truth", lambda cfg: "(ground truth)")
    monkeypatch.setattr(section_faithfulness, "_quantus_table", lambda models: "(quantus)")
    cfg = _common.Config.make(True)
    text = section_faithfulness.section_faithfulness(cfg)
    for title in (
        "## b. Faithfulness of the explanations",
        "### Deletion AUC, mean replacement (training mean)",
        "### Deletion AUC, blur replacement",
        "### Deletion AUC, zero replacement",
        "### Insertion AUC, mean replacement (higher is better)",
        "### Fraction of features removed until the assignment flips",
        "### Conservation through the encoder and cost",
        "| NEON | midpoint (design A) |",
    ):
        assert title in text
    lines = text.splitlines()
    start = lines.index("### Deletion AUC, mean replacement (training mean)")
    header = next(line for line in lines[start:] if line.startswith("| dataset | model"))
    assert header.split(" | ")[2:] == ["ACC (held-out)", "NEON", "gradient", "random |"]
    row = next(line for line in lines[start:] if "| k-means (raw) |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    # the same held-out points and baseline, recomputed here
    X = wc.datasets.load_digits()[0].astype(np.float32)
    sz = section_faithfulness.Sizes.of(cfg)
    test = np.random.default_rng(1).permutation(len(X))[: sz.eval_points]
    e = wc.explain(fitted["model"], X[test])
    curve = deletion_curve(
        fitted["model"], X[test], e.relevance, baseline=fitted["mean"], n_steps=sz.n_steps
    )
    assert float(cells[3]) == pytest.approx(np.median(curve.auc), rel=1e-3)
    assert cfg.targets == []  # targets are set for deep rows only


def test_sections_e_and_f_are_known_and_f_is_opt_in():
    assert run._parse_sections("f,e") == ["e", "f"]
    assert "f" not in _common.DEFAULT_SECTIONS and "e" in _common.DEFAULT_SECTIONS


def _clustering_script(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_clustering

    calls: list[dict] = []
    monkeypatch.setattr(bench_clustering, "run", lambda *a, **kw: calls.append(kw) or [])
    monkeypatch.setattr(bench_clustering, "to_markdown", lambda rows: "")
    monkeypatch.setattr(bench_clustering, "limit_threads", lambda n: None)
    return bench_clustering, calls


def test_clustering_conv_defaults_are_the_measured_recipe(monkeypatch):
    script, calls = _clustering_script(monkeypatch)
    script.main(["--conv", "--conv-seeds", "1", "3"])
    (kw,) = calls
    assert kw["conv"] and kw["conv_seeds"] == [1, 3]
    assert (kw["conv_pretrain"], kw["conv_epochs"], kw["conv_batch_size"]) == (150, 40, 128)
    assert (kw["conv_augment"], kw["conv_weight"], kw["conv_loss"]) == ("affine", 1.0, "kl")
    script.main(["--conv", "--conv-seeds", "2", "--conv-augment", "none"])
    assert calls[1]["conv_seeds"] == 2 and calls[1]["conv_augment"] is None


def test_clustering_zero_conv_seeds_is_an_error(monkeypatch, capsys):
    script, calls = _clustering_script(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        script.main(["--conv", "--conv-seeds", "0"])
    assert exc.value.code == 2 and not calls
    assert "--conv-seeds" in capsys.readouterr().err
