"""
Faithfulness: deletion curves under several protocols
=====================================================

An explanation is faithful when removing the features it ranks first changes the model's
output most. ``wc.evaluation`` replaces features in decreasing order of relevance and
tracks the logit of the cluster each point was assigned to. What a removed feature is
replaced by (the mean, zero, ...) matters, so this example compares NEON, gradient x input
and a random order under two protocols, and checks on synthetic data where the relevance
should land. The uninformative features here sit around 100, far from 0, as measurements
often do: that is where the protocols part ways.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.evaluation import deletion_curve, relevance_on_informative

X, y, informative = wc.datasets.make_blobs_with_relevant_features(
    600, n_clusters=4, n_features=20, n_informative=4, noise_mean=100.0, random_state=0
)
km = KMeans(4, n_init=10, random_state=0).fit(X)
print("informative features:", informative.nonzero()[0])

# %%
# Ground truth: the clusters differ only in the informative features
# ------------------------------------------------------------------
e = wc.explain(km, X)
print(f"share of the positive relevance on them: {relevance_on_informative(e, informative):.3f}")

# %%
# Deletion curves
# ---------------
rankings = {"neon": e.relevance, "gradient x input": wc.explain(km, X, "gradient_x_input")}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
for ax, protocol in zip(axes, ["mean", "zero"], strict=True):
    for name, ranking in rankings.items():
        curve = deletion_curve(km, X, ranking, baseline=protocol)
        ax.plot(
            100 * curve.fractions,
            curve.normalized.mean(0),
            label=f"{name} (AUC {curve.mean_auc:.3f})",
        )
    rand = deletion_curve(km, X, method="random", baseline=protocol, random_state=0)
    ax.plot(
        100 * rand.fractions,
        rand.normalized.mean(0),
        "--",
        color="grey",
        label=f"random (AUC {rand.mean_auc:.3f})",
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.set_title(f"removed features replaced by: {protocol}")
    ax.set_xlabel("features removed, most relevant first (%)")
    ax.legend(fontsize=8)
axes[0].set_ylabel("f_c / f_c(x)")
plt.show()

# %%
# Reading the curves: NEON's ranking makes the logit fall fastest over the first few
# features under both protocols. Over the whole curve the areas depend on the protocol:
# under zero replacement, gradient x input, whose reference point is the origin, that is
# the replacement value itself, reaches by far the lowest area. A method explained against
# a reference does best when the evaluation replaces features by that same reference, so
# compare methods under more than one protocol, and say which reference each one uses.

# %%
# One table for several methods
# -----------------------------
# ``compare_methods`` runs the same protocol for every method on the same points.
table = wc.evaluation.compare_methods(km, X[:200], ["neon", "gradient_x_input", "random"])
print(table[["deletion_auc", "insertion_auc"]].round(3))
