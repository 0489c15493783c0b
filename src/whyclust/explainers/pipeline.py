"""NEON for scikit-learn Pipelines, with the relevance in the user's own columns.

The steps in front of the clusterer are read as encoders (imputation, one-hot encoding,
column selection) followed by one affine map z = A u + a (see
:mod:`whyclust.engine.fold`); the clusterer (``KMeans``, ``MiniBatchKMeans``,
``MeanShift``, ``BisectingKMeans``, ``GaussianMixture``) is explained in z and its relevance
pulled back exactly to the encoded columns u (:mod:`whyclust.engine.affine`), then summed
over the indicator columns of each one-hot encoded column. Conservation holds in every
space: the relevance of a row sums to its logit. numpy / pandas input never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from whyclust._features import model_feature_names, pipeline_n_features
from whyclust._light import Fitted
from whyclust._validation import check_centers, refuse_sparse, resolve_dtype
from whyclust.engine.affine import AffineMap, DiagonalKMeans, kmeans_coefficients
from whyclust.engine.fold import check_fitted_steps, fold_preprocessing, missing_cells
from whyclust.engine.kinds import from_sklearn, from_whyclust
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits
from whyclust.explainers._engine import drive, explanation_from, on_device
from whyclust.explainers.bisecting import bisecting_geometry
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.kmeans import explain_kmeans
from whyclust.explainers.mixture import batch_rows, mixture_geometry

__all__ = ["explain_network", "explain_pipeline", "head_kind"]

_KMEANS_HEADS = ("KMeans", "MiniBatchKMeans", "MeanShift")
_BATCH_VALUES = 1 << 20
_FOLD_CHECK_ROWS = 64


def head_kind(est: Any) -> str | None:
    """``"kmeans"``, ``"mixture"`` or ``"bisecting"`` for a supported scikit-learn
    clusterer (by class name and module, nothing imported), else None."""
    name = type(est).__name__
    if not from_sklearn(est):
        return None
    if name in _KMEANS_HEADS:
        return "kmeans"
    if name == "GaussianMixture":
        return "mixture"
    if name == "BisectingKMeans":
        return "bisecting"
    return None


def explain_pipeline(
    pipeline: Any,
    X: Any,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    reference: Any = "midpoint",
    batch_size: int | None = None,
    eps: float | None = None,
    device: Any = None,
    space: str = "input",
) -> Explanation:
    """NEON relevance of a fitted Pipeline's cluster assignment, in X's own columns.

    ``X`` is what the pipeline takes (a DataFrame with its input columns, in order, or an
    array). ``extras["imputed"]`` marks the cells an imputer filled in (they carry the
    relevance of their fill value). ``reference="mean"`` is the mean of the encoded rows of
    X; an array reference must be numeric with X's columns (no one-hot encoding). ``space="model"``
    adds the relevance of the clusterer's own inputs, ``extras["model_relevance"]`` with
    ``extras["model_feature_names"]``.
    """
    if space not in ("input", "model"):
        raise ValueError(f"space must be 'input' or 'model', got {space!r}")
    steps = list(pipeline.steps)
    head = steps[-1][1]
    kind = head_kind(head)
    own = kind is None and from_whyclust(head)  # TELL, KernelKMeans
    if kind is None and not own:
        raise TypeError(
            f"cannot explain a Pipeline ending in {type(head).__name__}: supported "
            "clusterers are KMeans, MiniBatchKMeans, MeanShift, BisectingKMeans, "
            "GaussianMixture, whyclust's TELL and KernelKMeans"
        )
    check_fitted_steps(steps[:-1])
    frame, names = _input_frame(pipeline, X)
    n_in = len(names)
    folded = fold_preprocessing(steps[:-1], n_in)
    U64 = folded.encode(frame)
    if own:
        return _explain_own_head(
            pipeline, frame, names, folded, U64, target=target, beta=beta, contrast=contrast,
            reference=reference, batch_size=batch_size, eps=eps, device=device, space=space,
        )  # fmt: skip
    amap64 = _check_fold(pipeline, frame, U64, folded)
    out_dtype = _compute_dtype(frame)
    dtype = np.float64 if kind == "mixture" else out_dtype  # as explain_mixture
    U = np.ascontiguousarray(U64, dtype=dtype)
    arrays = {"offset": folded.offset}
    dense = folded.diag is None or not np.all(folded.diag != 0)
    if dense:
        arrays.update(linear=amap64[0], pinv=amap64[1])
    else:
        arrays["diag"] = folded.diag
    t = on_device(arrays, dtype, device)
    amap = (
        AffineMap(t["offset"], linear=t["linear"], pinv=t["pinv"])
        if dense
        else AffineMap(t["offset"], diag=t["diag"])
    )
    geom, rows = _head_geometry(kind, head, dtype, device, eps, max(amap.n_out, amap.n_in))
    if geom.n_features != amap.n_out:
        raise ValueError("the preprocessing output does not match the clusterer's inputs")
    bs = int(batch_size) if batch_size is not None else rows
    model_parts: list[np.ndarray] = []
    ref = _reference_for(reference, folded, n_in)
    like = t["offset"]
    if not dense and kind == "kmeans":  # the diagonal folds into the centroids: bare k-means
        diagonal = DiagonalKMeans(geom.centers, t["diag"], t["offset"], eps)
        res = _checked(lambda: _kmeans_result(explain_kmeans(
            None, U, geometry=diagonal, target=target, beta=beta, contrast=contrast,
            reference=ref, batch_size=bs)), U, folded, names, frame)  # fmt: skip
        rel_u = res["relevance"]
        if space == "model":
            model_parts.append(rel_u)
    elif not dense:
        res = _checked(lambda: drive(geom, U, like=like, target=target, beta=beta,
                                     contrast=contrast, reference=ref, model_mean=None,
                                     batch_size=bs, transform=amap),
                       U, folded, names, frame)  # fmt: skip
        rel_u = res["relevance"]
        if space == "model":
            model_parts.append(rel_u)
    else:
        head_view = _DenseHead(kind, geom, amap, keep_model=space == "model",
                               proportional=_pinv_is_scaled_transpose(*amap64))  # fmt: skip
        res = _checked(lambda: drive(head_view, U, like=like, target=target, beta=beta,
                                     contrast=contrast, reference=ref, model_mean=None,
                                     batch_size=bs, transform=amap, pullback=head_view.pull,
                                     parallel=not head_view.keep_model),
                       U, folded, names, frame)  # fmt: skip
        rel_u = res["relevance"]
        model_parts = head_view.model_parts
    relevance = _sum_groups(rel_u, folded.groups, n_in).astype(out_dtype, copy=False)
    res["logit"] = np.asarray(res["logit"]).astype(out_dtype, copy=False)
    extras: dict[str, Any] = {
        "model": kind,
        "encoded_groups": folded.groups,
        "affine": "diagonal" if not dense else "dense",
    }
    if folded.imputed:
        extras["imputed"] = missing_cells(frame, folded.imputed, n_in)
    if res["info"] is not None:
        key = "root" if kind == "mixture" else "baseline_root_share"
        extras[key] = res["info"].astype(np.int8) if kind == "mixture" else res["info"]
    if model_parts:
        extras["model_relevance"] = np.concatenate(model_parts, axis=0)
        extras["model_feature_names"] = _model_names(pipeline, extras["model_relevance"].shape[1])
    return explanation_from(res, names, extras, relevance=relevance)


def explain_network(net: Any, X: Any, **options: Any) -> Explanation:
    """``method="neon"`` for a :class:`~whyclust.networks.PipelineNetwork`.

    The network takes the encoded rows u. When they are the pipeline's own input columns
    (scalers, imputers, PCA: no one-hot encoding, reordering or dropped columns), u is an
    input of the pipeline that it encodes to itself, and the pipeline's explanation of u
    is exactly the network's.
    """
    pipeline = net.source
    if not net.folded.keeps_columns(pipeline_n_features(pipeline) or 0):
        raise TypeError(
            "this Pipeline one-hot encodes, reorders or drops columns, so its network takes "
            "encoded rows that the Pipeline itself does not: explain the Pipeline, "
            "wc.explain(pipeline, X), whose relevance is in its input columns"
        )
    return explain_pipeline(pipeline, X, **options)


def _explain_own_head(
    pipeline: Any, frame: Any, names: list[str], folded: Any, U64: np.ndarray, *,
    space: str, eps: Any, **neon: Any,
) -> Explanation:  # fmt: skip
    """A Pipeline ending in a whyclust model (TELL, KernelKMeans): the model is explained
    on the pipeline's output z, and since every step in front of it works column by column
    (z_j = d_j u_j + a_j) the relevance of z_j is that of the encoded column u_j, exactly."""
    from whyclust.explainers import run_method
    from whyclust.explainers.kernel import explain_kernel, kernel_parts
    from whyclust.networks import neuralize

    head = pipeline.steps[-1][1]
    n_in = len(names)
    if folded.diag is None:
        raise TypeError(
            f"cannot explain a Pipeline ending in {type(head).__name__} after a step that mixes "
            "columns (PCA, TruncatedSVD): in front of it only column-wise steps (scalers, "
            "imputers, one-hot encoding) are supported; explain it on the transformed rows"
        )
    _verify_fold(pipeline, frame, U64, folded)
    if not np.isfinite(U64).all():
        _check_encoded(U64, folded.groups, names, frame)
    Z = np.ascontiguousarray(U64 * folded.diag + folded.offset, dtype=_compute_dtype(frame))
    reference = _reference_for(neon.pop("reference"), folded, n_in)
    if not isinstance(reference, str):
        reference = np.asarray(reference, dtype=np.float64) * folded.diag + folded.offset
    if not (isinstance(reference, str) and reference == "midpoint"):
        neon["reference"] = reference
    if neon["contrast"] is None:
        del neon["contrast"]
    if eps is not None:
        neon["eps"] = eps
    parts = kernel_parts(head)
    if parts is not None:
        expl = explain_kernel(*parts, Z, **neon)
    else:
        expl = run_method(neuralize(head), Z, "neon", **neon)
    extras = dict(expl.extras)
    if space == "model":
        extras["model_relevance"] = np.asarray(expl.relevance)
        extras["model_feature_names"] = _model_names(pipeline, Z.shape[1])
    extras.update(model=type(head).__name__, encoded_groups=folded.groups, affine="diagonal")
    if folded.imputed:
        extras["imputed"] = missing_cells(frame, folded.imputed, n_in)
    expl.relevance = _sum_groups(np.asarray(expl.relevance), folded.groups, n_in)
    expl.feature_names, expl.extras = names, extras
    return expl


# ---- heads --------------------------------------------------------------------------------


def _head_geometry(
    kind: str, head: Any, dtype: np.dtype, device: Any, eps: float | None, m: int
) -> tuple[Any, int]:
    if kind == "kmeans":
        if getattr(head, "cluster_centers_", None) is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(head).__name__} instance is not fitted yet.")
        centers = check_centers(np.asarray(head.cluster_centers_))
        geom = _KMeansHead(on_device({"c": centers}, dtype, device)["c"], eps)
        return geom, max(64, _BATCH_VALUES // max(1, m))
    if kind == "mixture":
        geom = mixture_geometry(head, dtype, device, eps)
        return geom, batch_rows(geom.n_clusters, m, geom.covariance_type)
    geom = bisecting_geometry(head, dtype, device, eps)
    return geom, max(64, _BATCH_VALUES // max(1, m))


class _KMeansHead(KMeansGeometry):
    """A KMeansGeometry with the driver's interface."""

    def assigned_logit(self, scores: Any) -> Any:
        return assigned_logits(scores)

    def neon(self, xprep, scores, target, beta, *, contrast=None, reference=None):  # type: ignore[override]
        return super().neon(xprep, scores, target, beta, contrast=contrast, reference=reference)


class _DenseHead:
    """A model-space geometry seen through a dense affine map: coefficients from the
    head, relevance pulled back to the encoded columns (and kept in model space)."""

    def __init__(
        self, kind: str, geom: Any, amap: AffineMap, keep_model: bool, proportional: bool
    ) -> None:
        self.kind, self.geom, self.amap = kind, geom, amap
        self.xp, self.n_clusters = geom.xp, geom.n_clusters
        self.prepare, self.scores = geom.prepare, geom.scores
        self.assigned_logit = geom.assigned_logit
        self.keep_model = keep_model
        self.model_parts: list[np.ndarray] = []
        if kind == "kmeans":
            self.tau = geom.shifted @ amap.linear  # A^T (mu - o), rows
            self.nu = amap.back(geom.shifted)  # B (mu - o)
            xp = geom.xp
            if proportional:  # nu = d * tau: the pull-back's cross terms vanish
                self.stack = self.nu * self.tau
            else:
                self.stack = xp.concat([self.nu, self.nu * self.tau], axis=1)
        elif kind == "bisecting":
            self.tau = geom.direction @ amap.linear
            self.nu = amap.back(geom.midpoints)
        if kind != "mixture":
            self.ntau = self.nu * self.tau

    def neon(self, zprep, scores, target, beta, *, contrast=None, reference=None):
        info: dict[str, Any] = {"zprep": zprep, "target": target, "reference": reference}
        if self.kind == "mixture":
            _, f, pairs = self.geom.neon(
                zprep, scores, target, beta, contrast=contrast, reference=reference, pairs=True
            )
            info.update(pairs)
            return None, f, info
        if self.kind == "kmeans":
            delta = None if reference is None else zprep - reference
            alpha, bmix, f, took = kmeans_coefficients(
                self.geom, scores, target, beta, contrast=contrast, delta=delta
            )
        else:
            alpha, bmix, f, took = self.geom.coefficients(
                zprep, target, beta, contrast=contrast, reference=reference
            )
        info.update(alpha=alpha, bmix=bmix, code=took)
        return None, f, info

    def pull(self, raw: Any, info: dict[str, Any], out: Any = None) -> Any:
        """The batch's relevance of the encoded columns (None when written into ``out``)."""
        from whyclust.engine._xp import to_numpy

        amap, geom, zprep = self.amap, self.geom, info["zprep"]
        if self.kind == "mixture":
            if self.keep_model:
                xp = self.xp
                maps = info["delta"] * info["grad"] + info["remainder"][:, :, None] / zprep.shape[1]
                self.model_parts.append(to_numpy(xp.sum(info["coef"][:, :, None] * maps, axis=1)))
            return amap.pull_pairs(info)
        alpha, bmix, ref = info["alpha"], info["bmix"], info["reference"]
        if self.kind == "kmeans":
            zs = zprep if geom.shift_inputs else zprep - geom.offset
            into = out if bmix is None else None
            rel = amap.pull_kmeans(
                zs, info["target"], alpha, geom.shifted, self.tau, self.stack, out=into
            )
            wide = 2.0 * self.tau
            model = geom.relevance(zprep, alpha) if self.keep_model else None
            w_model = geom.mixing[:, : geom.n_features]
        else:
            rel = amap.back(zprep) * (alpha @ self.tau) - alpha @ self.ntau
            wide = self.tau
            model = None
            if self.keep_model:
                model = zprep * (alpha @ geom.direction) + alpha @ geom.quadratic
            w_model = geom.direction
        if bmix is not None:
            delta = zprep - ref
            rel = rel + amap.back(delta) * (bmix @ wide)
            if model is not None:
                model = model + delta * (bmix @ w_model)
        if model is not None:
            self.model_parts.append(to_numpy(model))
        return None if rel is out else rel


# ---- inputs -------------------------------------------------------------------------------


def _input_frame(pipeline: Any, X: Any) -> tuple[Any, list[str]]:
    """X as the pipeline takes it, and the names of its columns (checked)."""
    names_in = model_feature_names(pipeline)
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        cols = [str(c) for c in X.columns]
        if names_in is not None:
            expect = [str(c) for c in names_in]
            if cols != expect:
                missing = [c for c in expect if c not in cols]
                extra = [c for c in cols if c not in expect]
                detail = []
                if missing:
                    detail.append(f"missing {missing}")
                if extra:
                    detail.append(f"unexpected {extra}")
                if not detail:
                    detail.append(f"in the order {cols} instead of {expect}")
                raise ValueError(
                    "X's columns do not match the pipeline's input columns: " + "; ".join(detail)
                )
        elif len(cols) != pipeline_n_features(pipeline):
            raise ValueError(
                f"X has {len(cols)} columns, the pipeline was fitted with "
                f"{pipeline_n_features(pipeline)}"
            )
        _refuse_complex(X)
        return X, cols
    refuse_sparse(X)
    arr = np.asarray(X)
    _refuse_complex(arr)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-D array or a DataFrame, got shape {arr.shape}")
    n_in = pipeline_n_features(pipeline) or arr.shape[1]
    if arr.shape[1] != n_in:
        raise ValueError(f"X has {arr.shape[1]} features, the pipeline was fitted with {n_in}")
    if names_in is not None:
        import pandas as pd

        return pd.DataFrame(arr, columns=list(names_in)), [str(c) for c in names_in]
    return arr, [f"x{i}" for i in range(n_in)]


def _compute_dtype(frame: Any) -> np.dtype:
    """The dtype bare models compute in for the numeric input columns' common dtype: float64
    stays float64 (a float64 column beside integer ones too), everything else is float32."""
    if hasattr(frame, "dtypes"):
        kinds = [np.dtype(getattr(t, "numpy_dtype", t)) for t in frame.dtypes
                 if getattr(t, "kind", "O") in "iufb"]  # fmt: skip
        return resolve_dtype(np.result_type(*kinds)) if kinds else np.dtype(np.float32)
    return resolve_dtype(frame.dtype) if frame.dtype != object else np.dtype(np.float32)


def _refuse_complex(X: Any) -> None:
    dtypes = list(X.dtypes) if hasattr(X, "dtypes") else [X.dtype]
    odd = [t for t in dtypes if getattr(t, "kind", "O") == "c"]
    if odd:
        raise TypeError(f"X must be real-valued, got dtype {odd[0]}")


def _checked(run: Callable[[], Any], U: np.ndarray, folded: Any, names: list[str],
             frame: Any) -> Any:  # fmt: skip
    """``run()``, with a NaN / inf that no imputer filled in named by row and column."""
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # an inf row's scores: refused below
            return run()
    except ValueError as exc:
        if "NaN or infinite" in str(exc):
            _check_encoded(U, folded.groups, names, frame)
        raise


def _kmeans_result(expl: Explanation) -> dict[str, Any]:
    """An explain_kmeans Explanation as the fields of a :func:`drive` result."""
    return {
        "relevance": expl.relevance, "logit": expl.logit, "cluster": expl.cluster,
        "target": expl.target, "beta": expl.beta, "contrast": expl.contrast,
        "info": expl.extras.get("baseline_root_share"), "reference": expl.extras["reference"],
    }  # fmt: skip


def _check_encoded(U: np.ndarray, groups: np.ndarray, names: list[str], frame: Any) -> None:
    """Name the first cell no imputer fills in: its row (0-based), or the file's line and
    name for a table read by :func:`whyclust.datasets.read_frame`."""
    bad = ~np.isfinite(U)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        attrs = getattr(frame, "attrs", None) or {}
        where = f"row {row}"
        if attrs.get("lines") is not None:
            where = f"line {int(attrs['lines'][row])}"
            if attrs.get("source"):
                where = f"{attrs['source']} {where}"
        raise ValueError(
            f"X has a NaN or infinite value at {where} in column {names[groups[col]]!r} that "
            "no imputer of the pipeline fills in"
        )


def _check_fold(pipeline: Any, frame: Any, U: np.ndarray, folded: Any) -> tuple[Any, Any]:
    """The dense (A, A^+) (None for diagonal maps), after checking the fold against the
    pipeline's own transform on the first rows and that A has full row rank."""
    _verify_fold(pipeline, frame, U, folded)
    return _dense_map(folded)


def _verify_fold(pipeline: Any, frame: Any, U: np.ndarray, folded: Any) -> None:
    """Refuse unless the folded map equals the pipeline's own transform on the first rows."""
    if isinstance(pipeline, Fitted):  # read without scikit-learn: the fold is its transform
        return
    # rows that encode to finite values: a NaN no imputer fills is refused later, by name
    rows = _finite_rows(U, _FOLD_CHECK_ROWS)
    head = frame.iloc[rows] if hasattr(frame, "iloc") else frame[rows]
    if hasattr(head, "dtypes"):  # the check runs in float64, like the fold
        head = head.astype({c: np.float64 for c, t in head.dtypes.items() if t.kind == "f"})
    elif head.dtype.kind == "f":
        head = head.astype(np.float64)
    if len(pipeline.steps) > 1:
        expect = pipeline[:-1].transform(head)
        expect = np.asarray(expect.toarray() if hasattr(expect, "toarray") else expect, dtype=float)
    else:  # the clusterer alone
        expect = np.asarray(head, dtype=float)
    if folded.diag is not None:
        got = U[rows] * folded.diag + folded.offset
    else:
        got = U[rows] @ folded.linear.T + folded.offset
    scale = 1.0 + float(np.nanmax(np.abs(expect), initial=0.0))
    if got.shape != expect.shape or not np.allclose(
        got, expect, rtol=1e-6, atol=1e-7 * scale, equal_nan=True
    ):
        raise ValueError(
            "the pipeline's preprocessing could not be folded exactly into the cluster network "
            "(its transform differs from the folded affine map)"
        )


def _finite_rows(U: np.ndarray, count: int) -> np.ndarray:
    """The indices of the first ``count`` rows of U without NaN / inf, read in growing
    blocks (a full scan only when most rows are not finite)."""
    found: list[np.ndarray] = []
    start, block, have = 0, 4 * count, 0
    while start < U.shape[0] and have < count:
        stop = min(U.shape[0], start + block)
        idx = start + np.flatnonzero(np.isfinite(U[start:stop]).all(axis=1))
        found.append(idx)
        have += idx.size
        start, block = stop, 2 * block
    return np.concatenate(found)[:count] if found else np.zeros(0, dtype=np.intp)


def _dense_map(folded: Any) -> tuple[Any, Any]:
    """(A, B) of a dense fold, B = D^-1 (A D^-1)^+ with D the column-wise scaling in front
    of the steps that mix columns (the pull-back's roots are the nearest ones in the scaled
    space, not in X's units), after checking that A B = I; (None, None) for a diagonal
    fold without zeros."""
    if folded.diag is not None and np.all(folded.diag != 0):
        return None, None
    a = folded.dense()
    d = folded.column_scale()
    if not (np.all(np.isfinite(d)) and np.all(d != 0)):
        d = np.ones(a.shape[1])
    pinv = np.linalg.pinv(a / d) / d[:, None]
    if not np.allclose(a @ pinv, np.eye(a.shape[0]), atol=1e-8):
        raise ValueError(
            "the pipeline's affine steps lose rank (A A^+ != I): relevance cannot be pulled "
            "back exactly; drop the redundant components"
        )
    return a, pinv


def _pinv_is_scaled_transpose(a: np.ndarray, pinv: np.ndarray) -> bool:
    """Whether A^+ = D A^T for a diagonal D (scalers, unwhitened PCA or TruncatedSVD), in
    which case the k-means pull-back's cross terms cancel."""
    norm = np.einsum("ji,ji->i", a, a)
    d = np.einsum("ij,ji->i", pinv, a) / np.where(norm == 0.0, 1.0, norm)
    scale = float(np.max(np.abs(pinv))) or 1.0
    return bool(np.max(np.abs(pinv - d[:, None] * a.T)) <= 1e-10 * scale)


def _reference_for(reference: Any, folded: Any, n_in: int) -> Any:
    if isinstance(reference, str) or reference is None:
        return "midpoint" if reference is None else reference
    if not folded.keeps_columns(n_in):
        raise ValueError(
            "an array reference needs a pipeline whose encoded columns are its input columns "
            "(no one-hot encoding, reordering or dropped columns); "
            "use reference='mean' or 'midpoint'"
        )
    return reference


def _sum_groups(rel: np.ndarray, groups: np.ndarray, n_in: int) -> np.ndarray:
    """Sum the encoded columns' relevance onto their input columns (0 for unused ones)."""
    if groups.shape[0] == n_in and np.array_equal(groups, np.arange(n_in)):
        return rel
    out = np.zeros((rel.shape[0], n_in), dtype=rel.dtype)
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    out[:, g[starts]] = np.add.reduceat(rel[:, order], starts, axis=1)
    return out


def _model_names(pipeline: Any, width: int) -> list[str]:
    try:
        names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = []
    return names if len(names) == width else [f"z{i}" for i in range(width)]
