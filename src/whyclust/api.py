"""The public entry points ``wc.explain``, ``wc.neuralize`` and ``wc.counterfactual``."""

from __future__ import annotations

from whyclust.explainers import explain
from whyclust.explainers.counterfactual import counterfactual
from whyclust.networks import neuralize

__all__ = ["counterfactual", "explain", "neuralize"]
