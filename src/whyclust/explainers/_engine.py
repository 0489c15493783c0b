"""The batched two-pass driver shared by the mixture, bisecting and pipeline explainers.

A *geometry* is any engine object with ``xp``, ``n_clusters``, ``prepare(x)``,
``scores(xprep)`` (n, K) whose argmax is the assignment, ``assigned_logit(scores)`` (n,)
and ``neon(xprep, scores, target, beta, contrast=, reference=) -> (relevance, logit,
info)``. numpy arrays in, numpy arrays out; the geometry decides the namespace (numpy, or
torch on a device), so numpy input never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from whyclust._buffers import output_array
from whyclust.engine._xp import to_numpy
from whyclust.engine.kmeans import check_finite_scores
from whyclust.explainers._threads import run_batches
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.request import resolve_reference, resolve_request, row_batches

__all__ = ["as_namespace", "drive", "explanation_from", "on_device"]

#: pass 1 keeps the transformed rows for pass 2 when they are narrower than the input and
#: take at most this many bytes (like the (n, K) scores it keeps anyway)
_KEEP_BYTES = 1 << 28


def on_device(arrays: dict[str, Any], dtype: np.dtype, device: Any) -> dict[str, Any]:
    """The numpy ``arrays`` in the compute dtype, as torch tensors when ``device`` is not
    None or the CPU (torch is imported only then)."""
    out = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}
    if device is None or str(device) == "cpu":
        return out
    import torch

    dev = torch.device(device)
    if dev.type == "cpu":
        return out
    return {k: torch.from_numpy(v).to(dev) for k, v in out.items()}


def as_namespace(block: np.ndarray, like: Any) -> Any:
    """``block`` in the namespace and on the device of the array ``like``."""
    if isinstance(like, np.ndarray):
        return block
    import torch

    return torch.from_numpy(np.ascontiguousarray(block)).to(like.device)


def drive(
    geom: Any,
    flat: np.ndarray,
    *,
    like: Any,
    target: Any,
    beta: Any,
    contrast: Any,
    reference: Any,
    model_mean: Any,
    batch_size: int,
    transform: Callable[[Any], Any] | None = None,
    pullback: Callable[[Any, Any], Any] | None = None,
    n_out: int | None = None,
    first_row: int = 0,
    parallel: bool = True,
) -> dict[str, Any]:
    """Run the two passes over ``flat`` (n, p) rows; returns the explanation's arrays.

    ``transform`` maps raw rows (in the geometry's namespace) to the model's input space
    (default: identity); ``pullback(raw_rows, info, out)`` turns the ``info`` that the
    geometry's ``neon`` returns into the relevance of the raw columns (default: the
    relevance it returns), written into ``out`` (the batch's output rows, or None) when
    it returns None; ``reference`` is resolved in raw space and transformed. A
    transform that reduces the width is applied once: pass 1 keeps its rows (bounded by
    ``_KEEP_BYTES``). numpy batches of pass 2 run in threads unless ``parallel`` is False
    (for a ``pullback`` that keeps state in batch order).
    """
    n = flat.shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    fwd = transform if transform is not None else (lambda u: u)

    def rows_of(rows: slice) -> Any:
        return geom.prepare(fwd(as_namespace(flat[rows], like)))

    xp = geom.xp
    # without a transform the scores pass reads views of the rows: larger blocks are free
    score_rows = batch_size if transform is not None else max(batch_size, 4 * batch_size)
    kept: list[Any] | None = None  # transformed rows of pass 1, when they are the smaller
    blocks = []
    for r in row_batches(n, score_rows):
        xprep = rows_of(r)
        if transform is not None and kept is None and r.start == 0:
            width = int(xprep.shape[1])
            kept = [] if width < flat.shape[1] and n * width * 8 <= _KEEP_BYTES else None
        if kept is not None:
            kept.append(xprep)
        blocks.append(geom.scores(xprep))
    scores = xp.concat(blocks, axis=0)
    check_finite_scores(scores, first_row)
    assigned, tgt, other, beta_value = resolve_request(
        scores, target=target, beta=beta, contrast=contrast,
        assigned_logit=lambda _assigned: geom.assigned_logit(scores),
    )  # fmt: skip
    ref = resolve_reference(reference, flat, model_mean)
    ref_prepared = None if ref is None else geom.prepare(fwd(as_namespace(ref, like)))
    out = output_array((n, flat.shape[1] if n_out is None else n_out), flat.dtype, faulted=False)
    logit = np.empty(n, dtype=flat.dtype)
    batches = list(row_batches(n, batch_size))
    infos: list[Any] = [None] * len(batches)

    def explain_rows(i: int, rows: slice) -> None:
        raw = as_namespace(flat[rows], like)
        xprep = kept[i] if kept is not None else geom.prepare(fwd(raw))
        ref_rows = None
        if ref_prepared is not None:
            ref_rows = ref_prepared if ref_prepared.shape[0] == 1 else ref_prepared[rows]
        rel, f, info = geom.neon(
            xprep, scores[rows], tgt[rows], beta_value,
            contrast=None if other is None else other[rows], reference=ref_rows,
        )  # fmt: skip
        if pullback is not None:
            rel = pullback(raw, info, out[rows] if isinstance(like, np.ndarray) else None)
            info = info.get("code") if isinstance(info, dict) else None
        if rel is not None:
            out[rows] = to_numpy(rel)
        logit[rows] = to_numpy(f)
        if info is not None:
            infos[i] = to_numpy(info)

    run_batches(explain_rows, batches, parallel=parallel and isinstance(like, np.ndarray))
    infos = [a for a in infos if a is not None]
    return {
        "relevance": out,
        "logit": logit,
        "cluster": to_numpy(assigned),
        "target": to_numpy(tgt),
        "beta": beta_value,
        "contrast": None if other is None else to_numpy(other),
        "info": np.concatenate(infos, axis=0) if infos else None,
        "reference": None if ref is None else getattr(reference, "lower", lambda: "array")(),
        "scores": scores,
    }


def explanation_from(
    res: dict[str, Any], names: list[str] | None, extras: dict[str, Any], relevance: Any = None
) -> Explanation:
    """The :class:`Explanation` of a :func:`drive` result (``relevance`` replaces the
    driven one, e.g. after summing encoded columns); ``extras`` gets the reference used."""
    return Explanation.neon(
        relevance=res["relevance"] if relevance is None else relevance,
        logit=res["logit"],
        cluster=res["cluster"],
        target=res["target"],
        beta=res["beta"],
        contrast=res["contrast"],
        feature_names=names,
        extras={"reference": res["reference"] or "midpoint", **extras},
    )
