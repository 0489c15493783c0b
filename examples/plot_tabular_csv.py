"""
A CSV file, end to end
======================

The whole command-line workflow on a real table: the 178 wines of scikit-learn's wine data
(13 chemical measurements, 3 cultivars) written to a CSV file, clustered with
``whyclust fit``, explained with ``whyclust explain`` and summarised in a self-contained
HTML report with ``whyclust report``. The same three commands work on your own file.
"""

# %%
# Write the data to a CSV file
# ----------------------------
# The measurements are standardised first: k-means compares squared distances, and
# unscaled, the ``proline`` column (values near 1,000) would decide everything.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine

from whyclust.cli import main as whyclust

wine = load_wine(as_frame=True)
features = wine.data
table = (features - features.mean()) / features.std()
table["cultivar"] = wine.target
work = Path(tempfile.mkdtemp())
table.to_csv(work / "wine.csv", index=False)
print(table.shape, "->", work / "wine.csv")

# %%
# Fit, explain, report
# --------------------
# ``main`` runs the command line in this process and returns its exit code.
assert (
    whyclust(
        [
            "fit",
            str(work / "wine.csv"),
            "-k",
            "3",
            "--label-column",
            "cultivar",
            "-o",
            str(work / "wine.whyclust"),
            "--quiet",
        ]
    )
    == 0
)
assert (
    whyclust(
        [
            "explain",
            str(work / "wine.whyclust"),
            str(work / "wine.csv"),
            "--label-column",
            "cultivar",
            "-o",
            str(work / "relevance.csv"),
            "--quiet",
        ]
    )
    == 0
)
assert (
    whyclust(
        [
            "report",
            str(work / "wine.whyclust"),
            str(work / "wine.csv"),
            "--labels",
            "cultivar",
            "-o",
            str(work / "report.html"),
            "--quiet",
        ]
    )
    == 0
)
print(f"report.html: {(work / 'report.html').stat().st_size / 1e6:.1f} MB, self-contained")

# %%
# Read the relevance table
# ------------------------
# One row per wine: its cluster, its logit f_c and one relevance per measurement. For
# k-means the relevances of a row sum to its logit exactly.
rel = pd.read_csv(work / "relevance.csv")
print(rel.columns.tolist()[:6], "...")
names = list(features.columns)
gap = np.abs(rel[names].sum(axis=1) - rel["logit"]).max() / rel["logit"].abs().max()
print(f"max |sum R - f_c| / max |f_c| = {gap:.1e}")

# %%
# What each cluster rests on
# --------------------------
# The mean relevance of the members of each cluster: red measurements speak for the
# cluster, blue ones against it.
mean = rel.groupby("cluster")[names].mean()
fig, axes = plt.subplots(1, 3, figsize=(12, 4.5), sharex=True, layout="constrained")
for c, ax in zip(mean.index, axes, strict=True):
    row = mean.loc[c].sort_values(key=abs, ascending=False).head(8)
    ax.barh(row.index, row.values, color=np.where(row.values >= 0, "#c0392b", "#2e6db4"))
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.6)
    ax.set_title(f"cluster {c} ({(rel['cluster'] == c).sum()} wines)")
    ax.set_xlabel("mean relevance")
plt.show()
