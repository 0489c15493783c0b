"""scikit-learn's estimator checks for TELL (raw mode, both metrics, small and fast settings).

Every check passes; none is expected to fail. scikit-learn itself skips the array-API
check unless SCIPY_ARRAY_API=1 is set in the environment (TELL converts any input to numpy).
Note that the checks fit with ``n_clusters=1``: TELL accepts it like KMeans does, while
``neuralize`` / ``explain`` need at least two clusters.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from whyclust.models.tell import TELL

# check name -> reason; kept empty on purpose (see the module docstring)
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks(
    [TELL(n_clusters=3, n_init=2, max_iter=5, random_state=0),
     TELL(n_clusters=3, metric="cosine", n_init=2, max_iter=5, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_unfitted_model_raises_not_fitted_everywhere():
    import numpy as np
    import pytest
    from sklearn.exceptions import NotFittedError

    import whyclust as wc

    X = np.ones((4, 3))
    model = TELL(2)
    for call in (model.predict, model.transform, model.score):
        with pytest.raises(NotFittedError):
            call(X)
    with pytest.raises(NotFittedError):
        model.prototypes_  # noqa: B018
    with pytest.raises(NotFittedError):
        model.__neuralize__()
    with pytest.raises(NotFittedError):
        wc.neuralize(model)


def test_feature_names_are_kept_checked_and_saved(tmp_path):
    import numpy as np
    import pandas as pd
    import pytest

    import whyclust as wc

    rng = np.random.RandomState(0)
    df = pd.DataFrame(rng.standard_normal((60, 3)), columns=["age", "income", "score"])
    model = TELL(2, n_init=1, max_iter=3, random_state=0).fit(df)
    assert list(model.feature_names_in_) == ["age", "income", "score"]
    with pytest.raises(ValueError, match="feature names"):
        model.predict(df[["score", "income", "age"]])
    again = wc.load(wc.save(model, tmp_path / "named.safetensors"))
    assert list(again.feature_names_in_) == ["age", "income", "score"]
    np.testing.assert_array_equal(again.predict(df), model.labels_)
    model.fit(df.to_numpy())  # refit on a plain array: the old names go
    assert not hasattr(model, "feature_names_in_")
