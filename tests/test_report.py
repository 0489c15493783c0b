"""The HTML report: self-contained, every figure decodes, and it renders in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.report import build_report, write_report
from whyclust.summary import cluster_relevance, relevance_share

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
    X, y, informative = wc.datasets.make_blobs_with_relevant_features(300, 3, 10, 3, random_state=0)
    return X, y, informative, KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)


NAMES = [f"gene_{i}, a long name" for i in range(10)]


@pytest.fixture(scope="module")
def tabular(blobs):
    """One report of a DataFrame (named columns, a string index) with labels, built once."""
    X, y, _, km = blobs
    df = pd.DataFrame(X, columns=NAMES, index=[f"s{i:03d}" for i in range(len(X))])
    page = build_report(km, df, y=y, deletion_points=40, n_examples=2)
    return df, page, wc.explain(km, df)


def images_of(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<img src="([^"]*)" alt="([^"]*)"', page)


def downloads_of(page: str) -> dict[str, str]:
    links = re.findall(r'<a class="download" href="([^"]*)" download="([^"]*)"', page)
    return {name: href for href, name in links}


def decode_csv(href: str) -> pd.DataFrame:
    head, payload = href.split(",", 1)
    assert head == "data:text/csv;charset=utf-8;base64"
    return pd.read_csv(io.StringIO(base64.b64decode(payload).decode("utf-8")))


def points_of(page: str) -> dict:
    blob = re.search(r'<script type="application/json" id="points-data">(.*?)</script>', page, re.S)
    return json.loads(blob.group(1))


def test_report_is_self_contained(digits_report):
    page = digits_report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for needle in ("http://", "https://", "<link", "@import", "url(", "<script src"):
        assert needle not in page
    for title in ("Summary", "Cluster sizes", "Agreement with the labels", "Prototypes",
                  "Mean relevance per cluster", "Top features per cluster",
                  "Why these points are in their cluster", "Map of the data",
                  "Faithfulness: deletion curves", "Find a point",
                  "Download the relevance"):  # fmt: skip
        assert f"<h2>{title}</h2>" in page
    srcs = images_of(page)
    assert len(srcs) >= 7 and page.count("<img") == len(srcs)  # every image: source + alt
    from PIL import Image

    for src, alt in srcs:
        assert len(alt) > 10
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.width > 50 and img.height > 50
    # the only executable script is the inline one, and the CSP allows exactly it by hash
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    assert "default-src 'none'" in page


def test_tabular_report_content(blobs, tabular):
    _, y, informative, km = blobs
    _, page, _ = tabular
    assert "<tr><td>data</td><td>DataFrame</td></tr>" in page
    start = page.index('<table class="top">')
    top = page[start : page.index("</table>", start)]
    rows = re.findall(
        r'<tr><td>(\d+)</td><td class="num">[\d,]+</td><td>(.*?)</td></tr>', top, re.S
    )
    assert len(rows) == 3
    for _, cells in rows:  # the three informative features lead every cluster's list
        top3 = re.findall(r'<span class="feature">gene_(\d+), a long name</span>', cells)[:3]
        assert {int(t) for t in top3} == set(np.flatnonzero(informative))
    acc = re.search(
        r"<th>ACC</th><th>NMI</th><th>ARI</th></tr></thead>\s*<tbody><tr><td>([\d.]+)", page
    )
    assert float(acc.group(1)) == pytest.approx(
        wc.metrics.cluster_accuracy(y, km.labels_), abs=1e-3
    )
    assert "max |sum R - f_c| / max |f_c|" in page and "(exact)" in page
    for protocol in ("mean", "zero"):  # the replacement protocols are named
        assert f"AUC ({protocol})" in page
    assert "midpoint (mu_c + mu_k) / 2" in page and "the origin 0" in page


def test_shares_are_the_summary_definition(tabular):
    _, page, e = tabular
    mean = cluster_relevance(e).to_numpy()
    share = relevance_share(mean)
    top = page[page.index('<table class="top">') :]
    first = re.search(
        r'<span class="feature">gene_(\d+), a long name</span>.*?\((-?\d+)%\)', top, re.S
    )
    assert int(first.group(1)) == int(np.argmax(mean[0]))
    assert int(first.group(2)) == round(100 * share[0, int(first.group(1))])


def test_downloads_decode_to_the_relevance(tabular):
    df, page, e = tabular
    files = downloads_of(page)
    assert set(files) == {"mean_relevance.csv", "relevance.csv"}
    mean = decode_csv(files["mean_relevance.csv"])
    assert list(mean.columns) == ["cluster", "size", *NAMES]
    np.testing.assert_array_equal(mean["size"], np.bincount(e.cluster, minlength=3))
    np.testing.assert_allclose(mean[NAMES].to_numpy(), cluster_relevance(e).to_numpy(), rtol=1e-9)
    every = decode_csv(files["relevance.csv"])
    assert list(every.columns) == ["row_id", "cluster", "logit", *NAMES]
    assert list(every["row_id"]) == list(df.index)
    np.testing.assert_allclose(every[NAMES].to_numpy(), e.relevance, rtol=1e-9)
    np.testing.assert_array_equal(every["cluster"], e.cluster)
    # points are named by the DataFrame index, everywhere
    pts = points_of(page)
    assert [r[0] for r in pts["rows"]] == list(df.index)
    assert [r[1] for r in pts["rows"]] == list(e.cluster)
    assert "row s" in page  # example figures' alt text names the rows shown
    # the three most relevant features of a point, largest first
    r0 = np.argsort(-e.relevance[0])[:3]
    assert [pts["names"][j] for j in pts["rows"][0][3]] == [NAMES[j] for j in r0]


def test_row_ids_argument_and_large_tables_are_capped(blobs):
    X, _, _, km = blobs
    ids = [f"id-{i}" for i in range(len(X))]
    page = build_report(km, X, row_ids=ids, max_table_points=50, deletion_points=20, n_examples=1)
    pts = points_of(page)
    assert len(pts["rows"]) == 50 and {r[0] for r in pts["rows"]} <= set(ids)
    with pytest.raises(ValueError, match="row_ids has 3 entries"):
        build_report(km, X, row_ids=ids[:3])


def test_two_clusters_get_different_top_feature_lists():
    X, _, _ = wc.datasets.make_blobs_with_relevant_features(200, 2, 6, 2, random_state=1)
    km = KMeans(2, n_init=2, random_state=0).fit(X)
    page = build_report(km, X, deletion_points=20, n_examples=1)
    top = page[page.index('<table class="top">') :]
    rows = re.findall(r'<tr><td>(\d+)</td><td class="num">.*?</td><td>(.*?)</td></tr>', top, re.S)
    lists = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cells)).strip() for _, cells in rows[:2]]
    assert lists[0] != lists[1]
    # the leading feature is higher in one cluster and lower in the other
    arrows = [re.search(r'<span class="(up|down)"', cells).group(1) for _, cells in rows[:2]]
    assert sorted(arrows) == ["down", "up"]



def test_top_features_text_counts_what_a_table_of_few_columns_can_show():
    X, _, _ = wc.datasets.make_blobs_with_relevant_features(150, 3, 3, 2, random_state=2)
    page = build_report(KMeans(3, n_init=2, random_state=0).fit(X), X, n_examples=1)
    top = page.split('<section id="top">', 1)[1].split("</section>", 1)[0]
    assert "(at most 3)" in top and "5 features" not in top


def test_user_text_is_escaped(blobs):
    X, _, _, km = blobs
    names = ["<script>alert(1)</script>", *[f"f{i}" for i in range(1, X.shape[1])]]
    page = build_report(
        km, X, feature_names=names, title="<b>t</b>", deletion_points=20, n_examples=1
    )
    assert "<script>alert(1)" not in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert len(re.findall(r"<script>", page)) == 1


def test_compact_numbers():
    from whyclust.report._figures import compact_number

    cases = {0: "0", 0.5: "0.5", 12.345: "12.3", 1500: "1,500", 25_000: "25k",
             100_000: "100k", 1_234_567: "1.23M", -2e9: "-2G", 1e-5: "1.0e-05"}  # fmt: skip
    for value, text in cases.items():
        assert compact_number(value) == text


def test_deletion_curve_ranks_neon_above_random(blobs):
    from whyclust.report._sections import deletion_curves

    X, _, _, km = blobs
    net = wc.neuralize(km)
    rel = wc.explain(km, X[:80]).relevance
    curves = deletion_curves(net, X[:80], rel, "neon", ["mean", "zero"], seed=0)
    fractions = curves.pop("__fractions__")
    assert fractions[0] == 0 and fractions[-1] == 1
    assert set(curves) == {"mean", "zero"}
    for protocol in curves.values():
        for curve, _ in protocol.values():
            assert curve[0] == pytest.approx(1.0)
        # deleting every feature leaves the same point whatever the order
        assert protocol["neon"][0][-1] == pytest.approx(protocol["random"][0][-1])
    assert curves["mean"]["neon"][1] < curves["mean"]["random"][1]


def test_report_accepts_images_and_other_models(tmp_path):
    X, y = wc.datasets.load_digits(as_images=True)
    X, y = X[:200], y[:200]
    from whyclust.models.kernel_kmeans import KernelKMeans

    model = KernelKMeans(n_clusters=4, n_init=1, max_iter=10, random_state=0)
    model.fit(X.reshape(200, -1))
    path = write_report(model, X, tmp_path / "r.html", n_examples=1, deletion_points=30)
    page = path.read_text()
    assert "image 1 x 8 x 8" in page and "KernelKMeans" in page
    assert "mean of the points in each cluster" in page  # no centroids: cluster means
    assert "midpoints (u_i + u_j) / 2 of support points" in page  # its reference, named
    for protocol in ("zero", "mean", "blur"):
        assert f"AUC ({protocol})" in page


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
    with pytest.raises(ValueError, match="max_points must be an integer"):
        write_report(km, X, tmp_path / "r.html", max_points=0)
    with pytest.raises(ValueError, match="target='assigned'"):
        write_report(km, X, tmp_path / "r.html", explanation=wc.explain(km, X, target=0))
    order = np.random.default_rng(0).permutation(len(X))
    with pytest.raises(ValueError, match=r"logits differ from the model's on X for \d+ of"):
        write_report(km, X[order], tmp_path / "r.html", explanation=wc.explain(km, X))
    with pytest.raises(ValueError, match="covers 10 points"):
        write_report(km, X, tmp_path / "r.html", explanation=wc.explain(km, X[:10]))
    assert list(tmp_path.iterdir()) == []


def test_one_row_reports_and_scaling_advice_only_without_a_scaler(blobs):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = blobs[0]
    X = X * np.r_[1000.0, np.ones(9)]  # spreads differing by far more than 100x
    advice = "Standardise the data"
    assert advice in build_report(KMeans(3, n_init=1, random_state=0).fit(X), X, n_examples=1)
    pipe = make_pipeline(StandardScaler(), KMeans(3, n_init=1, random_state=0)).fit(X)
    assert advice not in build_report(pipe, X, n_examples=1)
    assert "<html" in build_report(pipe, X[:1], n_examples=1)  # no 2-D map of one point


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
        assert len(state) >= 7
        for complete, width, alt in state:
            assert complete and width > 0, f"figure not rendered: {alt}"
            assert alt.strip(), "an image has no alt text"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        # the download links carry the CSV the page was built from
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('a.download'))"
            ".map(a => [a.getAttribute('download'), a.href])"
        )
        files = dict(links)
        mean = decode_csv(files["mean_relevance.csv"])
        assert list(mean.columns[:3]) == ["cluster", "size", "pixel (0,0)"]
        assert len(mean) == 10 and mean["size"].sum() == 600
        every = decode_csv(files["relevance.csv"])
        assert len(every) == 600 and list(every.columns[:3]) == ["row_id", "cluster", "logit"]
        # the search box filters the table of points (the inline script ran)
        status = driver.find_element("id", "points-status")
        assert status.text.startswith("600 of 600 points match")
        box = driver.find_element("id", "point-search")
        box.send_keys("cluster:3")
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('#points-body tr'))"
            ".map(tr => tr.children[1].textContent)"
        )
        assert shown and set(shown) == {"3"}
        box.clear()
        box.send_keys("599")
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#points-body tr'))"
            ".map(tr => tr.children[0].textContent)"
        )
        assert rows == ["599"]
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


def test_columns_a_pipeline_drops_are_not_listed_as_relevant(blobs):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _, _, _ = blobs
    cols = [f"c{i}" for i in range(10)]
    df = pd.DataFrame(X, columns=cols)
    used = ["c0", "c1", "c2"]
    pipe = make_pipeline(ColumnTransformer([("num", StandardScaler(), used)]),
                         KMeans(3, n_init=1, random_state=0)).fit(df)  # fmt: skip
    page = build_report(pipe, df, n_examples=1)
    top = page.split('<section id="top">', 1)[1].split("</section>", 1)[0]
    assert any(c in top for c in used)
    assert not any(f">{c}<" in top or f"{c} " in top for c in cols[3:])
    assert "drops or reorders" in page  # the reason the faithfulness curves are skipped


def test_text_columns_show_their_most_common_values_not_code_means():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 200)
    df = pd.DataFrame({"x": group * 5.0 + rng.normal(size=200),
                       "region": np.where(group == 1, "north", "south")})  # fmt: skip
    pipe = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["x"]), ("c", OneHotEncoder(), ["region"])]),
        KMeans(2, n_init=2, random_state=0),
    ).fit(df)
    page = build_report(pipe, df, n_examples=1)
    top = page.split('<section id="top">', 1)[1].split("</section>", 1)[0]
    assert "mostly north vs south" in top or "mostly south vs north" in top
    protos = page.split('<section id="prototypes">', 1)[1].split("</section>", 1)[0]
    assert "z-scores of 1 features" in protos  # x only: category codes have no z-score


def test_pipeline_map_is_drawn_where_the_clusterer_sees_the_data(monkeypatch):
    """Not on category codes or raw units: on the rows the last step receives."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from whyclust.report import _sections as S

    rng = np.random.default_rng(1)
    group = rng.integers(0, 3, 150)
    df = pd.DataFrame({"x": group * 4.0 + rng.normal(size=150),
                       "grams": 1000.0 * rng.normal(size=150),
                       "region": np.array(["a", "b", "c"])[group]})  # fmt: skip
    pipe = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["x", "grams"]),
                           ("c", OneHotEncoder(), ["region"])]),
        KMeans(3, n_init=2, random_state=0),
    ).fit(df)
    seen = {}
    real = S.data_map

    def spy(flat, cluster, k, protos, *args):
        seen.update(flat=flat, protos=protos)
        return real(flat, cluster, k, protos, *args)

    monkeypatch.setattr(S, "data_map", spy)
    page = build_report(pipe, df, n_examples=1)
    np.testing.assert_allclose(seen["flat"], pipe[:-1].transform(df))
    np.testing.assert_allclose(seen["protos"], pipe[-1].cluster_centers_)
    assert "the space the pipeline" in page.split('<section id="map">', 1)[1]


def test_a_text_column_whose_mode_is_everyones_says_so():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 200)
    df = pd.DataFrame({"x": group * 5.0 + rng.normal(size=200),
                       "city": np.where(rng.random(200) < 0.8, "Köln", "Bonn")})  # fmt: skip
    ct = ColumnTransformer([("n", StandardScaler(), ["x"]), ("c", OneHotEncoder(), ["city"])])
    pipe = make_pipeline(ct, KMeans(2, n_init=2, random_state=0)).fit(df)
    top = build_report(pipe, df, n_examples=1).split('<section id="top">', 1)[1]
    top = top.split("</section>", 1)[0]
    assert "mostly Köln, as the other points" in top and "Köln vs Köln" not in top


def test_labels_by_row_label_must_match_the_rows(blobs):
    """A Series of labels left unshuffled beside a shuffled frame would be scored by
    position without a word; it is refused, and aligned labels give the same report."""
    X, y, _, km = blobs
    df = pd.DataFrame(X[:60], columns=NAMES, index=[f"s{i}" for i in range(60)])
    labels = pd.Series(y[:60], index=df.index)
    shuffled = df.sample(frac=1, random_state=0)
    with pytest.raises(ValueError, match=r"in another order: pass y\.loc"):
        build_report(km, shuffled, y=labels)
    with pytest.raises(ValueError, match="other row labels than X"):
        build_report(km, shuffled, y=labels.reset_index(drop=True))
    aligned = build_report(km, shuffled, y=labels.loc[shuffled.index], deletion_points=20)
    by_position = build_report(km, shuffled, y=labels.loc[shuffled.index].to_numpy(),
                               deletion_points=20)  # fmt: skip
    stamp = re.compile(r"<p>Generated by whyclust [^<]*</p>")
    assert stamp.sub("", aligned) == stamp.sub("", by_position) and "Agreement" in aligned


def test_members_values_skip_empty_cells_and_empty_text_is_a_value(monkeypatch):
    """The top-features text compares members with the rest over the cells that hold a
    value (not the figures' mean-filled view), and counts an empty text cell as a value of
    its own, as the one-hot encoding with its missing category does."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from whyclust.report import _sections as S

    rng = np.random.default_rng(3)
    group = rng.integers(0, 2, 300)
    temp = np.where(group == 1, 35.0, 19.0) + rng.normal(size=300)
    temp[rng.random(300) < 0.4] = np.nan
    shade = np.where(group == 1, np.where(rng.random(300) < 0.75, None, "dark"),
                     np.where(rng.random(300) < 0.6, "dark", "light")).astype(object)  # fmt: skip
    df = pd.DataFrame({"x": group * 6.0 + rng.normal(size=300), "temp": temp, "shade": shade})
    ct = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["x", "temp"]),
        ("c", OneHotEncoder(handle_unknown="ignore"), ["shade"]),
    ])  # fmt: skip
    pipe = make_pipeline(ct, KMeans(2, n_init=2, random_state=0)).fit(df)
    seen = {}
    real_means, real_modes = S.cluster_feature_means, S.text_modes

    def means(*args):
        seen["means"] = real_means(*args)
        return seen["means"]

    def modes(*args):
        seen["modes"] = real_modes(*args)
        return seen["modes"]

    monkeypatch.setattr(S, "cluster_feature_means", means)
    monkeypatch.setattr(S, "text_modes", modes)
    build_report(pipe, df, n_examples=1)
    labels = pipe.predict(df)
    member, rest = seen["means"]
    for c in (0, 1):
        assert member[c, 1] == pytest.approx(df.temp[labels == c].mean())  # pandas skips NaN
        assert rest[c, 1] == pytest.approx(df.temp[labels != c].mean())
    wet = int(np.bincount(labels[group == 1]).argmax())  # the cluster of group 1
    assert seen["modes"][2][wet][0] == "(missing)"


def test_deletion_summaries_are_medians_and_the_page_prints_whole(blobs):
    """One point with a near-zero logit must not decide the report's curves; and the
    printed page drops its scroll boxes."""
    from whyclust.evaluation import deletion_curve
    from whyclust.report._sections import deletion_curves

    X, _, _, km = blobs
    net = wc.neuralize(km)
    rel = wc.explain(km, X[:60]).relevance
    curves = deletion_curves(net, X[:60], rel, "neon", ["mean"], seed=0)
    by_hand = deletion_curve(net, X[:60], rel, baseline="mean")
    keep = by_hand.logit > 0
    assert curves["mean"]["neon"][1] == pytest.approx(np.median(by_hand.auc[keep]))
    np.testing.assert_allclose(curves["mean"]["neon"][0],
                               np.median(by_hand.normalized[keep], axis=0))  # fmt: skip
    page = build_report(km, X[:60], deletion_points=20, n_examples=1)
    assert "@media print" in page and "medians over the" in page
