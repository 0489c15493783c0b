"""TELL: interpretable neural clustering as a scikit-learn model (see :class:`TELL`).

Layout: ``_estimator`` (the class), ``_centers`` (the cluster layer and its updates),
``_encoder`` (autoencoder training, DEC's loss, augmentation), ``_format`` (the file
format), ``_progress`` (progress display).
"""

from __future__ import annotations

from whyclust.models.tell._estimator import TELL

__all__ = ["TELL"]


def _register() -> None:
    """Hook TELL into ``whyclust.neuralize`` and ``whyclust.save`` / ``load``.

    Kept until both dispatch on their own (``__neuralize__``; formats found by io).
    """
    from whyclust.io import register_format
    from whyclust.models.tell import _format
    from whyclust.networks import register_neuralizer

    register_neuralizer(TELL)(lambda model, **kwargs: model.__neuralize__(**kwargs))
    register_format("tell", TELL, _format.dump, _format.restore)


_register()
