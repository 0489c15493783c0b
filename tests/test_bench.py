"""``whyclust bench``: a cheap section writes a markdown report with the expected headers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import whyclust as wc
from whyclust import bench

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_quick_speed_section_writes_markdown(tmp_path, monkeypatch):
    # the slow baselines (occlusion, SHAP) are left out to keep the test short
    full = bench._speed_methods
    keep = {"neon", "gradient", "integrated_gradients"}
    monkeypatch.setattr(
        bench,
        "_speed_methods",
        lambda X, seed: {k: v for k, v in full(X, seed).items() if k in keep},
    )
    out = tmp_path / "sub" / "BENCH.md"
    assert (
        bench.main(["--quick", "--sections", "a", "--datasets", "digits", "--out", str(out)]) == 0
    )
    text = out.read_text()
    for expected in (
        "# whyclust benchmarks",
        "- Date: ",
        "- Command: `whyclust bench --quick --sections a --datasets digits",
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
    monkeypatch.setattr(bench, "_available", lambda name: "not loaded in this test")
    monkeypatch.setattr(bench, "_fix_mmap_threshold", lambda: False)
    rows = bench._scale_rows([(300, 3), (300, 7)], 784, 0)
    assert len(rows) == 2
    for seconds, t_pred, delta, _ in rows:
        assert seconds > 0 and t_pred > 0 and delta >= 0


@pytest.mark.parametrize("bad", ["g", "", "a,z"])
def test_bad_sections(bad, tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--sections", bad, "--out", str(tmp_path / "x.md")])
    assert not (tmp_path / "x.md").exists()


def test_bad_datasets(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--datasets", "cifar", "--out", str(tmp_path / "x.md")])


def test_table_markdown():
    text = bench._table(["a", "b"], [["x", 1.23456], ["y", float("nan")]])
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
    # k-means only, NEON against gradient and random: cheap, same code path as the full table
    full = bench._faithfulness_models

    def models(name, cfg):
        for label, model, note in full(name, cfg):
            yield label, model, note
            return

    monkeypatch.setattr(bench, "_faithfulness_models", models)
    monkeypatch.setattr(bench, "BASELINES", ("gradient",))
    monkeypatch.setattr(bench, "_ground_truth", lambda cfg, methods: "(ground truth)")
    cfg = bench.Config.make(True)
    text = bench.section_faithfulness(cfg)
    assert "## b. Faithfulness: deletion AUC (lower is better)" in text
    assert "### Insertion AUC (higher is better)" in text
    header = next(line for line in text.splitlines() if line.startswith("| dataset | model"))
    assert header.split(" | ")[2:6] == ["ACC", "neon", "gradient", "random"]
    row = next(line for line in text.splitlines() if line.startswith("| digits | k-means (raw)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    neon, grad, rand = (float(c) for c in cells[3:6])
    assert neon < grad and neon < rand
    assert [t[5] for t in cfg.targets] == [True, True]


def test_sections_e_and_f_are_known_and_f_is_opt_in():
    assert bench._parse_sections("f,e") == ["e", "f"]
    assert "f" not in bench.DEFAULT_SECTIONS and "e" in bench.DEFAULT_SECTIONS


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
