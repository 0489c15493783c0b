from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whyclust import metrics


def test_accuracy_is_invariant_to_relabelling():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    assert metrics.cluster_accuracy(y, np.array([2, 2, 0, 0, 1, 1, 1])) == 1.0
    assert metrics.evaluate(y, (y + 1) % 3) == {"acc": 1.0, "nmi": 1.0, "ari": 1.0}


def test_accuracy_by_hand():
    # classes a,a,a,b,b,c ; clusters 0,0,1,1,1,1 -> best: 0->a (2), 1->b (2): 4/6
    y_true = np.array(["a", "a", "a", "b", "b", "c"])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert metrics.matching(y_true, y_pred) == {0: "a", 1: "b"}


def test_more_clusters_than_classes_counts_unmatched_as_errors():
    y_true = np.array([0, 0, 0, 0])
    assert metrics.cluster_accuracy(y_true, np.array([0, 0, 1, 2])) == 0.5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(0, 10**6))
def test_accuracy_matches_brute_force_over_permutations(labels, seed):
    import itertools

    y_true = np.array(labels)
    rng = np.random.default_rng(seed)
    y_pred = rng.integers(0, 4, size=y_true.size)
    best = 0
    classes = list(range(5))
    for perm in itertools.permutations(classes, 4):
        best = max(best, int(np.sum(np.array(perm)[y_pred] == y_true)))
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(best / y_true.size)


def test_bad_labels():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.evaluate([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        metrics.cluster_accuracy([], [])
    with pytest.raises(ValueError, match="1-D"):
        metrics.nmi(np.zeros((2, 2)), np.zeros((2, 2)))
