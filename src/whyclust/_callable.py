"""Let a subpackage be called like its main function.

``whyclust.explain`` is both a subpackage and the function ``explain``: once the subpackage
is imported, Python binds the attribute ``whyclust.explain`` to the module, so the module
itself must be callable for ``wc.explain(model, X)`` to keep working.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_module_callable(module_name: str, fn: Callable[..., Any]) -> None:
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    _CallableModule.__call__.__doc__ = fn.__doc__
    module.__class__ = _CallableModule
