"""
TELL on a stream: ``partial_fit``
=================================

TELL is k-means written as a neural layer, so it can keep learning as data arrive. Here it
is fitted on 300 points, then follows a stream of batches whose clusters slowly drift;
after each batch we record how well it agrees with the true clusters of that batch, with
and without online updates.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import whyclust as wc

rng = np.random.default_rng(0)
K, d = 4, 8
centers = rng.normal(scale=4.0, size=(K, d))
drift = rng.normal(scale=0.25, size=(K, d))  # every batch, each centre moves a little


def batch(step: int, n: int = 200):
    labels = rng.integers(0, K, n)
    return centers[labels] + step * drift[labels] + rng.normal(size=(n, d)), labels


X0, y0 = batch(0, 300)
online = wc.TELL(n_clusters=K, random_state=0).fit(X0)
frozen = wc.TELL(n_clusters=K, random_state=0).fit(X0)

# %%
# Follow the stream
# -----------------
acc_online, acc_frozen = [], []
for step in range(1, 31):
    Xb, yb = batch(step)
    acc_frozen.append(wc.metrics.cluster_accuracy(yb, frozen.predict(Xb)))
    acc_online.append(wc.metrics.cluster_accuracy(yb, online.predict(Xb)))
    online.partial_fit(Xb)  # learn from the batch after predicting it
print(
    f"last 10 batches: online ACC {np.mean(acc_online[-10:]):.3f}, "
    f"frozen ACC {np.mean(acc_frozen[-10:]):.3f}"
)

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(acc_online, label="partial_fit on every batch")
ax.plot(acc_frozen, label="fitted once", ls="--")
ax.set_xlabel("batch")
ax.set_ylabel("accuracy on the batch")
ax.legend()
plt.show()

# %%
# Explain the current model
# -------------------------
# TELL is nearest-centre on L2-normalised features, so NEON explains it exactly like
# k-means.
Xb, yb = batch(31)
e = wc.explain(online, Xb)
print(e)
print(
    "max |sum R - f_c| / max |f_c| =",
    f"{np.abs(e.relevance_sum() - e.logit).max() / np.abs(e.logit).max():.1e}",
)
