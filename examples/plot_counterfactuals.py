"""
Counterfactuals: what would have to change?
===========================================

For a k-means model, the points of a cluster form a convex cell. ``wc.counterfactual``
projects a point onto the cell of another cluster: the smallest change (in Euclidean
distance) after which the model assigns it there. Here: handwritten digits moved from one
cluster to another.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans

import whyclust as wc

X, y = wc.datasets.load_digits()
km = KMeans(10, n_init=10, random_state=0).fit(X)
match = wc.metrics.matching(y, km.labels_)  # cluster -> the digit most of it holds
cluster_of = {digit: c for c, digit in match.items()}

# %%
# Move some 1s into the cluster of the 7s
# ---------------------------------------
ones = np.flatnonzero((km.labels_ == cluster_of[1]) & (y == 1))[:4]
target = cluster_of[7]
cf = wc.counterfactual(km, X[ones], target)
assert (km.predict(cf.X_cf) == target).all()
print("distance moved:", np.round(np.linalg.norm(cf.X_cf - X[ones], axis=1), 2))

fig, axes = plt.subplots(3, 4, figsize=(7, 5.5), layout="constrained")
for j in range(4):
    delta = (cf.X_cf[j] - X[ones[j]]).reshape(8, 8)
    m = np.abs(delta).max()
    axes[0, j].imshow(X[ones[j]].reshape(8, 8), cmap="gray", vmin=0, vmax=16)
    axes[1, j].imshow(cf.X_cf[j].reshape(8, 8), cmap="gray", vmin=0, vmax=16)
    im = axes[2, j].imshow(delta, cmap="bwr", vmin=-m, vmax=m)
for ax, label in zip(axes[:, 0], ["original", "counterfactual", "change"], strict=True):
    ax.set_ylabel(label)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=axes[2], shrink=0.8, label="change (last image's scale)")
plt.show()

# %%
# The contrastive view
# --------------------
# The relevance of "why my cluster and not the target" sums to the margin
# ||x - mu_k||^2 - ||x - mu_c||^2 that the counterfactual has to overcome.
e = wc.explain(km, X[ones], contrast=target)
d = ((X[ones, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
margin = d[:, target] - d[np.arange(len(ones)), km.labels_[ones]]
print("margin:", np.round(margin, 1))
print("sum of the contrastive relevance:", np.round(e.relevance_sum(), 1))
