"""Cluster-level summaries and contrastive explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.summary import (
    cluster_relevance,
    cluster_summary,
    contrastive,
    group_means,
    relevance_share,
)


@pytest.fixture(scope="module")
def setup():
    X, _, informative = wc.datasets.make_blobs_with_relevant_features(
        400, n_clusters=3, n_features=12, n_informative=3, random_state=0
    )
    cols = [f"f{i}" for i in range(12)]
    df = pd.DataFrame(X, columns=cols)
    km = KMeans(3, n_init=3, random_state=0).fit(X)
    return df, km, informative


def test_mean_relevance_per_cluster_matches_groupby(setup):
    df, km, _ = setup
    e = wc.explain(km, df)
    mean = cluster_relevance(e)
    assert list(mean.columns) == list(df.columns)
    ref = e.to_frame().groupby(e.cluster).mean()
    np.testing.assert_allclose(mean.to_numpy(), ref.to_numpy(), rtol=1e-12)
    # NEON conserves: the row sums are the mean logits of each cluster
    logit_mean = pd.Series(e.logit).groupby(e.cluster).mean().to_numpy()
    np.testing.assert_allclose(mean.sum(axis=1).to_numpy(), logit_mean, rtol=1e-9)


def test_a_cluster_table_is_plotted_under_its_own_clusters_and_columns(setup):
    """A subset without cluster 0: its table's rows are clusters 1 and 2, and the panels say
    so, with the bars of the largest values labelled by their column names."""
    pytest.importorskip("matplotlib")
    from whyclust.plotting import plot_prototypes

    df, km, _ = setup
    labels = km.predict(df.to_numpy())
    mean = cluster_relevance(wc.explain(km, df[labels != 0]))
    fig = plot_prototypes(mean, max_features=2)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["cluster 1", "cluster 2"]
    for ax, (_, row) in zip(axes, mean.iterrows(), strict=True):
        shown = {t.get_text() for t in ax.get_yticklabels()}
        assert shown == set(row.abs().nlargest(2).index)
    fig = plot_prototypes(mean, titles=["a", "b"], feature_names=list("abcdefghijkl"))
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["a", "b"]
    long = [f"{'a very long column name ' * 3}{i}" for i in range(12)]
    fig = plot_prototypes(mean, feature_names=long, max_features=3)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert labels and all(len(t) == 28 and t.endswith("\u2026") for t in labels)


def test_top_features_are_the_informative_ones_with_names(setup):
    df, km, informative = setup
    e = wc.explain(km, df)
    s = cluster_summary(e, top=3)
    assert list(s.columns) == [
        "cluster",
        "rank",
        "feature",
        "feature_index",
        "mean_relevance",
        "share",
        "size",
        "mean_logit",
    ]
    assert len(s) == 9 and set(s["cluster"]) == {0, 1, 2}
    names = set(np.asarray(df.columns)[informative])
    assert set(s["feature"]) <= names
    assert np.all(np.diff(s["mean_relevance"].to_numpy().reshape(3, 3), axis=1) <= 0)
    assert s.groupby("cluster")["size"].first().sum() == len(df)
    # share of relevance carried by the informative features is large
    assert s.groupby("cluster")["share"].sum().min() > 0.8


def test_summary_without_names_and_by_target(setup):
    df, km, _ = setup
    X = df.to_numpy()
    e = wc.explain(km, X, target=1)
    s = cluster_summary(e, top=2, by="target")
    assert set(s["cluster"]) == {1} and s["feature"].iloc[0].startswith("x")
    assert s["size"].iloc[0] == len(X)
    with pytest.raises(ValueError, match="top"):
        cluster_summary(e, top=0)
    with pytest.raises(ValueError, match="by"):
        cluster_summary(e, by="label")
    with pytest.raises(TypeError, match="Explanation"):
        cluster_summary(X)


def test_contrastive_for_kmeans_kernel_and_deep(setup):
    df, km, _ = setup
    X = df.to_numpy().copy()[:60]
    cl = km.predict(X)
    other = (cl + 1) % 3
    e = contrastive(km, X, k=other)
    d = ((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    h = d[np.arange(60), other] - d[np.arange(60), cl]
    np.testing.assert_allclose(e.relevance_sum(), h, rtol=1e-8)
    kk = wc.KernelKMeans(3, n_init=1, random_state=0, max_support=100).fit(X)
    ek = contrastive(kk, X, c=0, k=2)
    assert np.all(ek.target == 0) and np.all(ek.contrast == 2)
    np.testing.assert_allclose(ek.relevance_sum(), ek.logit, atol=1e-8 * np.abs(ek.logit).max())
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(12, 4, bias=False).double())
    with torch.no_grad():
        centers = enc(torch.from_numpy(X[:3])).numpy()
    ed = contrastive((enc, centers), X, c=0, k=1)
    np.testing.assert_allclose(ed.extras["head_conservation"], 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="competitor"):
        contrastive(km, X)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 6)),
           elements=st.floats(-1e3, 1e3)),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_group_means_match_a_loop(values, n_groups, seed):
    groups = np.random.default_rng(seed).integers(0, n_groups, len(values))
    got = group_means(values, groups, n_groups)
    for g in range(n_groups):  # oracle: a plain loop over the groups
        rows = values[groups == g]
        if len(rows):
            np.testing.assert_allclose(got[g], rows.mean(0), rtol=1e-12, atol=1e-9)
        else:
            assert np.isnan(got[g]).all()


def test_group_means_blocks_and_bad_input(monkeypatch):
    import whyclust.summary as S

    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 3)).astype(np.float32)
    groups = rng.integers(0, 4, 50)
    full = group_means(values, groups, 4)
    monkeypatch.setattr(S, "_BLOCK_ROWS", 7)  # many blocks: same result
    np.testing.assert_allclose(group_means(values, groups, 4), full, rtol=1e-12)
    assert full.dtype == np.float64
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 2\)"):
        group_means(values, groups, 2)
    with pytest.raises(TypeError, match="integers"):
        group_means(values, groups.astype(float), 4)
    with pytest.raises(ValueError, match="values must be"):
        group_means(values[:, 0], groups, 4)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 8)),
              elements=st.floats(-1e6, 1e6)))  # fmt: skip
@example(np.array([[2.0, 5e-324]]))  # a subnormal share underflows to 0
def test_relevance_share_divides_by_the_absolute_total(rel):
    share = relevance_share(rel)
    total = np.abs(rel).sum(1)
    for r in range(len(rel)):  # second formula, row by row
        if total[r] > 0:
            np.testing.assert_allclose(share[r], rel[r] / total[r])
            assert np.abs(share[r]).sum() == pytest.approx(1.0)
            # signs kept, except where R_i / total underflows to 0 (R_i subnormal, e.g. 5e-324)
            tiny = np.finfo(np.float64).smallest_subnormal
            underflow = (share[r] == 0) & (np.abs(rel[r]) < total[r] * tiny)
            assert np.all((np.sign(share[r]) == np.sign(rel[r])) | underflow)
        else:
            assert np.isnan(share[r]).all()


def test_summary_share_is_relevance_share(setup):
    df, km, _ = setup
    e = wc.explain(km, df)
    s = cluster_summary(e, top=12)
    want = relevance_share(cluster_relevance(e).to_numpy())
    got = np.full_like(want, np.nan)
    got[s["cluster"].to_numpy(), s["feature_index"].to_numpy()] = s["share"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
