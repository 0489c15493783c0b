"""The HTML report: self-contained, every figure decodes, and it renders in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.report import build_report, write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    X, y = wc.datasets.load_digits()
    X, y = X[:600], y[:600]
    km = KMeans(n_clusters=10, n_init=2, random_state=0).fit(X)
    path = tmp_path_factory.mktemp("report") / "digits.html"
    write_report(km, X, path, y=y, image_shape=(8, 8), data_name="digits", n_examples=3)
    return path


@pytest.fixture(scope="module")
def blobs():
    X, y, informative = wc.datasets.make_blobs_with_relevant_features(
        300, 3, 10, 3, random_state=0
    )
    return X, y, informative, KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)


def images_of(page: str) -> list[str]:
    return re.findall(r"<img [^>]*src='([^']*)'", page)


def test_report_is_self_contained(digits_report):
    page = digits_report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for needle in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert needle not in page
    for title in ("Summary", "Cluster sizes", "Agreement with the labels", "Prototypes",
                  "Top features per cluster", "Why these points are in their cluster",
                  "Map of the data", "Faithfulness: deletion curve"):  # fmt: skip
        assert f"<h2>{title}</h2>" in page
    srcs = images_of(page)
    assert len(srcs) >= 6
    from PIL import Image

    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.width > 50 and img.height > 50
    assert page.count("<img") == len(srcs)  # every image has an embedded source


def test_tabular_report_content(blobs):
    X, y, informative, km = blobs
    names = [f"gene_{i}" for i in range(X.shape[1])]
    page = build_report(km, X, y=y, feature_names=names, deletion_points=60)
    # the three informative features lead every cluster's top-feature list
    rows = re.findall(r"<tr><td>(\d+)</td><td>[\d,]+</td><td>(.*?)</td></tr>", page)
    assert len(rows) == 3
    for _, cells in rows:
        top3 = re.findall(r"(gene_\d+) <span", cells)[:3]
        assert {names.index(t) for t in top3} == set(np.flatnonzero(informative))
    acc = float(re.search(r"<td>([\d.]+)</td><td>[\d.]+</td><td>[\d.]+</td>", page).group(1))
    assert acc == pytest.approx(wc.metrics.cluster_accuracy(y, km.labels_), abs=1e-3)
    assert "max |sum R - f_c| / max |f_c|" in page and "(exact)" in page


def test_deletion_curve_ranks_neon_above_random(blobs):
    from whyclust.report import _deletion_curves

    X, _, _, km = blobs
    net = wc.neuralize(km)
    rel = wc.explain(km, X[:80]).relevance
    curves = _deletion_curves(net, X[:80], rel, "neon", "mean", seed=0)
    fractions, _ = curves.pop("__fractions__")
    assert fractions[0] == 0 and fractions[-1] == 1
    for curve, _ in curves.values():
        assert curve[0] == pytest.approx(1.0)
    # deleting every feature leaves the same point whatever the order
    assert curves["neon"][0][-1] == pytest.approx(curves["random"][0][-1])
    assert curves["neon"][1] < curves["random"][1]


def test_report_accepts_images_and_other_models(tmp_path):
    X, y = wc.datasets.load_digits(as_images=True)
    X, y = X[:200], y[:200]
    from whyclust.models.kernel_kmeans import KernelKMeans

    model = KernelKMeans(n_clusters=4, n_init=1, max_iter=10, random_state=0)
    model.fit(X.reshape(200, -1))
    path = write_report(model, X, tmp_path / "r.html", n_examples=2, deletion_points=40)
    page = path.read_text()
    assert "image 1 x 8 x 8" in page and "KernelKMeans" in page
    assert "mean of the points in each cluster" in page  # no centroids: cluster means


def test_bad_arguments_write_nothing(tmp_path, blobs):
    X, y, _, km = blobs
    with pytest.raises(ValueError, match="labels have 5 entries"):
        write_report(km, X, tmp_path / "r.html", y=y[:5])
    with pytest.raises(ValueError, match="image_shape"):
        write_report(km, X, tmp_path / "r.html", image_shape=(3, 3))
    with pytest.raises(ValueError, match="feature_names has 2 names"):
        write_report(km, X, tmp_path / "r.html", feature_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown method"):
        write_report(km, X, tmp_path / "r.html", method="magic")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.browser
def test_report_renders_in_headless_chromium(digits_report, tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian chromium and chromium-driver (apt-get install chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(Path(digits_report).resolve().as_uri())
        state = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        assert len(state) >= 6
        for complete, width, alt in state:
            assert complete and width > 0, f"figure not rendered: {alt}"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        height = driver.execute_script("return document.documentElement.scrollHeight")
        assert height > 2000  # the whole report laid out, not an error page
        driver.set_window_size(1280, min(int(height), 8000))
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
