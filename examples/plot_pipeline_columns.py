"""
Explanations in the original columns of a pipeline
==================================================

Users fit ``make_pipeline(StandardScaler(), KMeans(3))``, not a bare k-means, and want the
explanation in their own columns. A scaler is a diagonal, invertible affine map, so it
folds exactly into the k-means network: the relevance of column *i* in original units
equals the relevance of the scaled column *i*. This example explains the Pipeline in the
DataFrame's own columns and index, and checks the result against the k-means step
explained on the scaled data.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import whyclust as wc
from whyclust.summary import cluster_summary

df = load_wine(as_frame=True).data
df.index = [f"wine {i}" for i in range(len(df))]
pipe = make_pipeline(StandardScaler(), KMeans(3, n_init=10, random_state=0)).fit(df)
scaler, km = pipe[0], pipe[-1]

# %%
# The Pipeline explained in the wine's own columns
# ------------------------------------------------
# The scaler folds exactly into the k-means network's first layer: one relevance per
# original column, summing to the cluster logit, with the clusters of ``pipe.predict``.
e = wc.explain(pipe, df)
assert (e.cluster == pipe.predict(df)).all()
print(e.feature_names[:4], "...")
print(f"conservation: max |sum R - f_c| = {np.abs(e.relevance_sum() - e.logit).max():.1e}")

# %%
# For a diagonal scaler this equals the k-means step explained on the scaled columns
# ----------------------------------------------------------------------------------
scaled = pd.DataFrame(scaler.transform(df), columns=df.columns, index=df.index)
step = wc.explain(km, scaled)
np.testing.assert_allclose(step.relevance, e.relevance, rtol=1e-6, atol=1e-9)
print("the Pipeline's relevance equals the k-means step's on the scaled data")

# %%
# Top measurements per cluster, by name
# -------------------------------------
print(cluster_summary(e, top=3)[["cluster", "rank", "feature", "mean_relevance", "share"]])

# %%
# One wine, by its name
# ---------------------
row = e.to_frame().loc["wine 0"].sort_values(key=abs, ascending=False)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.barh(row.index[:8], row.values[:8], color=np.where(row.values[:8] >= 0, "#c0392b", "#2e6db4"))
ax.invert_yaxis()
ax.axvline(0, color="black", lw=0.6)
ax.set_title(f"wine 0, cluster {e.cluster[0]}: f_c = {e.logit[0]:.2f}")
ax.set_xlabel("relevance")
plt.show()
