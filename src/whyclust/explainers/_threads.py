"""Row batches of numpy work shared among threads (numpy releases the GIL)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

__all__ = ["run_batches"]


def run_batches(fn: Callable[[int, slice], None], batches: list[slice], parallel: bool) -> None:
    """Call ``fn(i, rows)`` for every batch; with ``parallel``, in threads that each take a
    contiguous group of batches, with BLAS held to one thread per worker so that the cores
    are not oversubscribed. ``fn`` must only write rows of its own batch."""
    workers = _n_workers(len(batches)) if parallel else 1
    indexed = list(enumerate(batches))
    if workers == 1:
        for i, rows in indexed:
            fn(i, rows)
        return
    from concurrent.futures import ThreadPoolExecutor

    step = -(-len(indexed) // workers)
    groups = [indexed[i : i + step] for i in range(0, len(indexed), step)]

    def run(group: list[tuple[int, slice]]) -> None:
        for i, rows in group:
            fn(i, rows)

    with _blas_controller().limit(limits=1), ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(run, g) for g in groups]:
            done.result()


def _n_workers(n_batches: int) -> int:
    """numpy's elementwise kernels run on one core: threads share the batches instead."""
    return max(1, min(n_batches // 4, os.cpu_count() or 1, 8))


@functools.cache
def _blas_controller() -> Any:
    """The BLAS libraries loaded with numpy (scanning a process's libraries takes a while)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")
