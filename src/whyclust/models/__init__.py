"""Clustering models: :class:`~whyclust.models.tell.TELL` and
:class:`~whyclust.models.kernel_kmeans.KernelKMeans`. Importing this package imports neither."""
