"""Shared test settings: one torch thread per xdist worker, reproducible hypothesis on CI."""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # two workers on two cores: avoid oversubscription

settings.register_profile(
    "ci",
    derandomize=True,  # the same examples on every CI run: a red CI is always reproducible
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
