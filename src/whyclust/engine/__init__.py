"""The one NEON engine: cluster networks and their relevance rules as array-API code.

Every function here takes the arrays it works on and finds their namespace with
``array_api_compat``: the same lines run on numpy (in memory or streamed, torch never
imported), on torch tensors (CPU or CUDA, inside autograd backward functions) and on any
other library the Python array API standard covers.

- :mod:`whyclust.engine.pool`: the min-pool layer's rules (min-take-most, stabiliser).
- :mod:`whyclust.engine.kmeans`: k-means as scores, margins and logits, and the midpoint
  and baseline-root relevance of its linear layer.
"""
