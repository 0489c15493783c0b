"""TELL: interpretable neural clustering as a scikit-learn model (see :class:`TELL`).

Layout: ``_estimator`` (the class), ``_centers`` (the cluster layer and its updates),
``_encoder`` (autoencoder training, DEC's loss, augmentation), ``_format`` (the file
format), ``_progress`` (progress display).
"""

from __future__ import annotations

from whyclust.models.tell._estimator import TELL
from whyclust.models.tell._format import dump as to_file
from whyclust.models.tell._format import restore as from_file

__all__ = ["TELL", "from_file", "to_file"]
