"""Explanations beyond one machine's memory: Dask arrays and bounded-memory streaming.

- :func:`explain_dask` / :func:`predict_dask`: lazy dask arrays, one task per row chunk,
  the network shipped to the workers once (a single graph key every task depends on).
- :func:`explain_to` / :func:`predict_stream`: one process, any row-sliceable input
  (``np.memmap``, zarr, HDF5, dask), relevance written batch by batch into an output
  array-like (``np.memmap``, zarr), so that memory is bounded by the batch size.

Both give the same numbers as the in-memory :func:`whyclust.explain`: with
``beta="auto"`` a first pass computes the mean assigned-cluster logit over all of ``X``
and every batch is then explained with that one beta.

For plain k-means models (centroid arrays, scikit-learn / dask-ml ``KMeans``) on the CPU,
the streaming functions run the array-API engine on numpy and never import torch, so that
a process working through an on-disk array stays small.
"""

from whyclust.scale.dask import explain_dask, predict_dask
from whyclust.scale.stream import explain_to, predict_stream

__all__ = ["explain_dask", "explain_to", "predict_dask", "predict_stream"]
