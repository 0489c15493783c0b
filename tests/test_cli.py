"""The command-line tool end to end: happy paths, and a table of bad inputs that must end
with one line on stderr, exit code 2, no traceback and no output file."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from whyclust.cli import main

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with a labelled CSV, a .npy copy and a model fitted on them."""
    root = tmp_path_factory.mktemp("cli")
    from whyclust.datasets import make_blobs_with_relevant_features

    X, y, _ = make_blobs_with_relevant_features(120, 3, 6, 2, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["label"] = y
    frame.to_csv(root / "data.csv", index=False)
    frame.drop(columns="label").to_csv(root / "features.csv", index=False)
    np.save(root / "data.npy", X)
    np.savetxt(root / "labels.txt", y, fmt="%d")
    assert main(["fit", str(root / "data.csv"), "-k", "3", "--label-column", "label",
                 "--scale", "none", "-o", str(root / "model.whyclust"), "-q"]) == 0  # fmt: skip
    return root


def run_ok(args, capsys) -> str:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


# --- happy paths ------------------------------------------------------------------------


def test_fit_prints_summary_and_scores(work, tmp_path, capsys):
    out = run_ok(["fit", work / "data.csv", "-k", "3", "--label-column", "label", "--seed",
                  "1", "--scale", "none", "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    assert "fitted KMeans (K=3) on 120 points x 6 columns (no scaling)" in out
    acc = float(out.split("ACC ")[1].split(",")[0])
    assert acc > 0.9  # well-separated blobs
    import whyclust as wc

    assert wc.load(tmp_path / "m.whyclust").cluster_centers_.shape == (3, 6)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_explain_outputs(work, tmp_path, capsys, suffix):
    out_path = tmp_path / f"rel{suffix}"
    out = run_ok(["explain", work / "model.whyclust", work / "data.csv", "--label-column",
                  "label", "-o", out_path], capsys)  # fmt: skip
    assert "explained 120 points with neon" in out
    if suffix == ".npy":
        rel = np.load(out_path)
        assert rel.shape == (120, 6)
        return
    frame = pd.read_csv(out_path) if suffix == ".csv" else pd.read_parquet(out_path)
    assert list(frame.columns) == ["cluster", "logit", *[f"f{i}" for i in range(6)]]
    rel = frame[[f"f{i}" for i in range(6)]].to_numpy()
    # NEON conserves the logit: the relevance of each row sums to it
    np.testing.assert_allclose(rel.sum(1), frame["logit"], rtol=1e-6, atol=1e-6)
    assert (frame["logit"] > 0).all()
    assert set(frame["cluster"]) == {0, 1, 2}


def test_explain_other_target_and_beta(work, tmp_path, capsys):
    out_path = tmp_path / "why_not_0.csv"
    run_ok(["explain", work / "model.whyclust", work / "data.npy", "--target", "0",
            "--beta", "0", "-o", out_path], capsys)  # fmt: skip
    frame = pd.read_csv(out_path)
    assert (frame["target"] == 0).all()
    assert list(frame.columns[:3]) == ["cluster", "target", "logit"]
    others = frame["cluster"] != 0
    assert others.any() and (frame.loc[others, "logit"] < 0).all()


def test_explain_with_a_baseline_method(work, tmp_path, capsys):
    from whyclust.explainers import available_methods

    if "gradient_x_input" not in available_methods():
        pytest.skip("baseline explainers are not part of this build")
    out = run_ok(["explain", work / "model.whyclust", work / "features.csv", "--method",
                  "gradient_x_input", "-o", tmp_path / "g.parquet"], capsys)  # fmt: skip
    assert "with gradient_x_input" in out
    frame = pd.read_parquet(tmp_path / "g.parquet")
    assert frame.shape == (120, 2 + 6)
    assert np.isfinite(frame.to_numpy()).all()


def test_report_with_labels_from_file_and_column(work, tmp_path, capsys):
    for labels in (work / "labels.txt", "label"):
        out_path = tmp_path / "report.html"
        data = work / ("features.csv" if isinstance(labels, Path) else "data.csv")
        run_ok(["report", work / "model.whyclust", data, "--labels", labels, "-q",
                "-o", out_path], capsys)  # fmt: skip
        page = out_path.read_text()
        assert "Agreement with the labels" in page
        assert "<script src" not in page and "http://" not in page and "https://" not in page
        out_path.unlink()


def _agreement(page: str) -> list[str]:
    """ACC, NMI and ARI as the report prints them."""
    import re

    text = re.sub(r"<[^>]+>", " ", page.split("Agreement with the labels", 1)[1])
    return text.split("ARI", 1)[1].split()[:3]


@pytest.mark.parametrize("layout", ["tsv with ids", "label first", "header and blank lines",
                                    "semicolons", "text labels", "one per line, sorted",
                                    "text, one per line"])  # fmt: skip
def test_report_labels_files_of_every_layout_give_the_same_agreement(layout, work, tmp_path,
                                                                     capsys):  # fmt: skip
    y = np.loadtxt(work / "labels.txt", dtype=int)
    rows = {
        "tsv with ids": ["id\tlabel"] + [f"{i}\t{v}" for i, v in enumerate(y)],
        "label first": ["label,id"] + [f"{v},{i}" for i, v in enumerate(y)],
        "header and blank lines": ["label"] + [f"{v}\n" if i == 5 else str(v)
                                               for i, v in enumerate(y)],
        "semicolons": ["id;label"] + [f"{i};{v}" for i, v in enumerate(y)],
        "text labels": ["class"] + [f"kind{v}" for v in y],
        # no header, and the first label comes back: not a header row repeated
        "one per line, sorted": [str(v) for v in np.sort(y)],
        "text, one per line": [f"kind{v}" for v in y],
    }[layout]  # fmt: skip
    if layout == "one per line, sorted":
        y_sorted = tmp_path / "sorted_ref.txt"
        y_sorted.write_text("\n".join(["label"] + [str(v) for v in np.sort(y)]) + "\n")
    (tmp_path / "l.txt").write_text("\n".join(rows) + "\n")
    pages = []
    reference = tmp_path / "sorted_ref.txt" if layout == "one per line, sorted" else (
        work / "labels.txt")
    for labels in (reference, tmp_path / "l.txt"):
        run_ok(["report", work / "model.whyclust", work / "features.csv", "--labels", labels,
                "-q", "-o", tmp_path / "r.html"], capsys)  # fmt: skip
        pages.append(_agreement((tmp_path / "r.html").read_text()))
    assert pages[0] == pages[1]


@pytest.mark.parametrize("model", ["tell", "kernel-kmeans"])
def test_other_models_fit_and_explain(work, tmp_path, capsys, model):
    module = {"tell": "whyclust.models.tell", "kernel-kmeans": "whyclust.models.kernel_kmeans"}
    if not _model_available(module[model]):
        pytest.skip(f"{model} is not part of this build")
    out = run_ok(["fit", work / "data.csv", "-k", "3", "--model", model, "--label-column",
                  "label", "--scale", "none", "-q", "-o", tmp_path / "m.whyclust"],
                 capsys)  # fmt: skip
    assert out == ""
    run_ok(["explain", tmp_path / "m.whyclust", work / "features.csv", "-q",
            "-o", tmp_path / "r.csv"], capsys)  # fmt: skip
    frame = pd.read_csv(tmp_path / "r.csv")
    rel = frame[[f"f{i}" for i in range(6)]].to_numpy()
    # NEON conserves the logit through both networks' heads
    np.testing.assert_allclose(rel.sum(1), frame["logit"], rtol=1e-3, atol=1e-3)
    assert frame["cluster"].nunique() == 3


def test_image_folder_end_to_end(tmp_path, capsys):
    from PIL import Image

    import whyclust as wc

    X, y = wc.datasets.load_digits(as_images=True)
    for cls in (0, 1):
        (tmp_path / "imgs" / f"digit{cls}").mkdir(parents=True)
        for i in np.flatnonzero(y == cls)[:15]:
            img = (X[i, 0] * 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "imgs" / f"digit{cls}" / f"{i}.png")
    out = run_ok(["fit", tmp_path / "imgs", "-k", "2", "-o", tmp_path / "m.whyclust"], capsys)
    assert "fitted KMeans (K=2) on 30 points x 64 features" in out
    assert "ACC 1.000" in out  # zeros and ones separate perfectly
    run_ok(["report", tmp_path / "m.whyclust", tmp_path / "imgs", "-q",
            "-o", tmp_path / "r.html"], capsys)  # fmt: skip
    page = (tmp_path / "r.html").read_text()
    assert "image 1 x 8 x 8" in page and "Agreement with the labels" in page
    assert "digit0/" in page  # the example points are named by their files

    run_ok(["explain", tmp_path / "m.whyclust", tmp_path / "imgs", "-q",
            "-o", tmp_path / "e.csv"], capsys)  # fmt: skip
    frame = pd.read_csv(tmp_path / "e.csv")
    folders = [tmp_path / "imgs" / f"digit{c}" for c in (0, 1)]
    files = sorted(f"{f.name}/{p.name}" for f in folders for p in f.iterdir())
    assert list(frame.columns[:3]) == ["file", "cluster", "logit"] and list(frame["file"]) == files
    one = tmp_path / "one" / "x"  # one image alone: the same row as inside the folder
    one.mkdir(parents=True)
    shutil.copy(tmp_path / "imgs" / files[7], one / "a.png")
    run_ok(["explain", tmp_path / "m.whyclust", one.parent, "-q", "--beta", "1",
            "-o", tmp_path / "one.csv"], capsys)  # fmt: skip
    run_ok(["explain", tmp_path / "m.whyclust", tmp_path / "imgs", "-q", "--beta", "1",
            "-o", tmp_path / "all.csv"], capsys)  # fmt: skip
    alone, inside = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "all.csv")
    assert alone["file"].tolist() == ["x/a.png"]
    np.testing.assert_allclose(alone.iloc[0, 1:].to_numpy(float),
                               inside.iloc[7, 1:].to_numpy(float), rtol=1e-5, atol=1e-6)


def test_demo(tmp_path, capsys):
    out = run_ok(["demo", "--out", tmp_path / "demo", "--seed", "0"], capsys)
    assert (tmp_path / "demo" / "report.html").is_file()
    assert (tmp_path / "demo" / "model.whyclust").is_file()
    acc = float(out.split("ACC ")[1].split(",")[0])
    assert acc > 0.6
    err = float(out.split("conservation error ")[1].split()[0])
    assert err < 1e-4
    from whyclust.io import open_model

    beta = float(out.split("beta=")[1].split(",")[0])  # kept for later explain runs
    assert open_model(tmp_path / "demo" / "model.whyclust")[1].fit_beta == pytest.approx(
        beta, rel=1e-2
    )


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "fit", "explain", "report"):
        assert command in out
    assert main(["--version"]) == 0


# --- bad input: a table of cases --------------------------------------------------------


def _write(path: Path, content) -> Path:
    if content == "NPY3":  # three features, where the model takes six
        np.save(path, RNG.normal(size=(4, 3)))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _model_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


GOOD = "a,b\n1,2\n3,4\n5,6\n7,9\n"

CASES = {
    # name: (setup files {name: content}, argv with {d} for the folder, expected message)
    "missing file": ({}, ["fit", "{d}/nope.csv", "-k", "2"], "no such file"),
    "empty file": ({"e.csv": ""}, ["fit", "{d}/e.csv", "-k", "2"], "is empty"),
    "ragged long row": (
        {"r.csv": "a,b\n1,2\n3,4,5\n"}, ["fit", "{d}/r.csv", "-k", "2"],
        "r.csv line 3 has 3 fields but the header (the first line) has 2",
    ),
    "ragged short row": (
        {"r.csv": "a,b,c\n1,2,3\n4,5\n6,7,8\n"}, ["fit", "{d}/r.csv", "-k", "2"],
        "r.csv line 3 has 2 fields but the header (the first line) has 3",
    ),
    "non-numeric column": (
        {"t.csv": "a,colour\n1,red\n2,blue\n3,red\n"}, ["fit", "{d}/t.csv", "-k", "2"],
        "t.csv has non-numeric columns: colour (one-hot encode them with --categorical auto, "
        "leave them out with --drop, or name the label column with --label-column)",
    ),
    "NaN": ({"n.csv": "a,b\n1,2\nnan,4\n5,6\n"}, ["fit", "{d}/n.csv", "-k", "2"], "NaN"),
    "inf": ({"i.csv": "a,b\n1,2\n3,inf\n5,6\n"}, ["fit", "{d}/i.csv", "-k", "2"], "infinite"),
    "K larger than n": (
        {"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "9"], "larger than the number of samples"
    ),
    "K=1": ({"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "1"], "at least 2"),
    "unknown model": ({"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "2", "--model", "dbscan"],
                      "'dbscan' is not one of"),
    "missing -k": ({"g.csv": GOOD}, ["fit", "{d}/g.csv"], "Missing option"),
    "unknown label column": (
        {"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "2", "--label-column", "y"],
        "label column 'y' not in g.csv",
    ),
    "output folder missing": (
        {"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "2", "-o", "{d}/no/m.whyclust"],
        "folder does not exist",
    ),
    "other columns": (
        {"w.csv": "a,b,c\n1,2,3\n4,5,6\n"},
        ["explain", "MODEL", "{d}/w.csv", "-o", "{d}/out.csv"],
        "w.csv does not fit",
    ),
    "reordered columns": (
        {"w.csv": "f1,f0,f2,f3,f4,f5\n1,2,3,4,5,6\n"},
        ["explain", "MODEL", "{d}/w.csv", "-o", "{d}/out.csv"],
        "in another order ('f1', 'f0' moved",
    ),
    "extra column": (
        {"w.csv": "f0,f1,f2,f3,f4,f5,id\n1,2,3,4,5,6,7\n"},
        ["report", "MODEL", "{d}/w.csv", "-o", "{d}/out.html"],
        "unexpected 'id'; leave 'id' out with --label-column or --drop",
    ),
    "wrong number of features": (
        {"w.npy": "NPY3"},
        ["explain", "MODEL", "{d}/w.npy", "-o", "{d}/out.csv"],
        "has 3 features, but the model",
    ),
    "unknown method": (
        {}, ["explain", "MODEL", "DATA", "--method", "magic", "-o", "{d}/out.csv"],
        "unknown method 'magic'",
    ),
    "bad output type": ({}, ["explain", "MODEL", "DATA", "-o", "{d}/out.txt"], "must end in"),
    "target out of range": (
        {}, ["explain", "MODEL", "DATA", "--target", "7", "-o", "{d}/out.csv"], r"[0, 2]"
    ),
    "bad target": (
        {}, ["explain", "MODEL", "DATA", "--target", "near", "-o", "{d}/out.csv"],
        "'assigned' or a cluster number",
    ),
    "negative beta": (
        {}, ["explain", "MODEL", "DATA", "--beta", "-1", "-o", "{d}/out.npy"], "beta must be"
    ),
    "missing model": (
        {}, ["explain", "{d}/none.whyclust", "DATA", "-o", "{d}/out.csv"], "no such model file"
    ),
    "pickled model": (
        {"evil.whyclust": "PICKLE"}, ["explain", "{d}/evil.whyclust", "DATA", "-o",
                                      "{d}/out.csv"], "never unpickles",
    ),
    "labels of wrong length": (
        {"l.txt": "0\n1\n"}, ["report", "MODEL", "DATA", "--labels", "{d}/l.txt",
                              "-o", "{d}/r.html"], "--labels has 2 entries",
    ),
    "labels file of two unnamed columns": (
        {"l.csv": "a,b\n" + "0,1\n" * 120}, ["report", "MODEL", "DATA", "--labels",
                                             "{d}/l.csv", "-o", "{d}/r.html"],
        "name its label column 'label'",
    ),
    "labels file with a missing label": (
        {"l.csv": "id,label\n" + "".join(f"{i},{i % 3 if i != 7 else ''}\n"
                                          for i in range(120))},
        ["report", "MODEL", "DATA", "--labels", "{d}/l.csv", "-o", "{d}/r.html"],
        "line 9 has no label",
    ),
    "a missing label": (
        {"g.csv": "a,b,label\n1,2,0\n3,4,\n5,6,1\n7,9,1\n"},
        ["fit", "{d}/g.csv", "-k", "2", "--label-column", "label", "-q"],
        "no label in data row 2",
    ),
    "impute on an array": (
        {"x.npy": "NPY3"}, ["fit", "{d}/x.npy", "-k", "2", "--impute", "mean"],
        "apply to CSV and Parquet",
    ),
    "output replacing the input": (
        {}, ["explain", "MODEL", "DATA", "-o", "DATA"], "is one of the command's inputs"
    ),
    "bad image shape": (
        {}, ["report", "MODEL", "DATA", "--image-shape", "3x", "-o", "{d}/r.html"], "HxW"
    ),
    "image shape mismatch": (
        {}, ["report", "MODEL", "DATA", "--image-shape", "2x2", "-o", "{d}/r.html"],
        "does not match 6 features",
    ),
    "report to a non-html file": ({}, ["report", "MODEL", "DATA", "-o", "{d}/r.png"], "must end"),
    "TELL missing": (
        {"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "2", "--model", "tell"],
        "not available in this installation",
    ),
    "KernelKMeans missing": (
        {"g.csv": GOOD}, ["fit", "{d}/g.csv", "-k", "2", "--model", "kernel-kmeans"],
        "not available in this installation",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, work, tmp_path, capsys, monkeypatch):
    missing = {"TELL missing": "whyclust.models.tell",
               "KernelKMeans missing": "whyclust.models.kernel_kmeans"}  # fmt: skip
    if case in missing:  # an installation without that model: its import fails
        monkeypatch.setitem(sys.modules, missing[case], None)
    files, argv, message = CASES[case]
    marker = tmp_path / "pwned"
    for name, content in files.items():
        if content == "PICKLE":
            content = pickle.dumps(_Payload(marker))
        _write(tmp_path / name, content)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [
        a.replace("{d}", str(tmp_path))
        .replace("MODEL", str(work / "model.whyclust"))
        .replace("DATA", str(work / "features.csv"))
        for a in argv
    ]
    if args[0] == "fit" and "-o" not in args:
        args += ["-o", str(tmp_path / "model.whyclust")]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in err + out
    # nothing written: no output file, no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not marker.exists()


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("whyclust")
    if script.exists():
        return [str(script)]
    found = shutil.which("whyclust")
    return [found] if found else [sys.executable, "-m", "whyclust.cli"]


def test_console_script_subprocess(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,x\n")
    proc = subprocess.run(
        [*_console_script(), "fit", str(bad), "-k", "2", "-o", str(tmp_path / "m.whyclust")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.csv line 3, column 'b': 'x' is not a number" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.whyclust").exists()


def test_report_of_one_cluster_shows_no_direction_and_a_mistyped_labels_file_is_named(
    work, tmp_path, capsys
):
    import pandas as pd

    import whyclust as wc

    frame = pd.read_csv(work / "features.csv")
    labels = wc.load(work / "model.whyclust").predict(frame)
    frame[labels == labels[0]].head(5).to_csv(tmp_path / "one.csv", index=False)
    run_ok(["report", work / "model.whyclust", tmp_path / "one.csv", "-q",
            "-o", tmp_path / "r.html"], capsys)  # fmt: skip
    page = (tmp_path / "r.html").read_text()
    assert "vs n/a" in page and "lower than the other points" not in page
    args = ["report", work / "model.whyclust", work / "data.npy", "--labels",
            tmp_path / "typo.csv", "-o", tmp_path / "x.html"]  # fmt: skip
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and not (tmp_path / "x.html").exists()
