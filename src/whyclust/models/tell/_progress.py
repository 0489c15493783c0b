"""Progress of TELL's epochs: a tqdm bar on a terminal, one line per update in a log."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """``update(n, **postfix)`` after each epoch; ``close()`` at the end.

    On a terminal this is a tqdm bar. When stderr is not a terminal (a log file, a CI job,
    a notebook's captured output), a bar redrawn with carriage returns never shows up, so
    each update writes one line: tqdm's own meter (count, elapsed, rate, time left).
    """

    def __init__(self, total: int | None, desc: str, enabled: bool) -> None:
        self.enabled = bool(enabled)
        self.total = total
        self.desc = desc
        self.n = 0
        self._bar: Any = None
        if not self.enabled:
            return
        self._start = time.monotonic()
        self._tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        if self._tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="epoch", leave=False)

    def update(self, n: int = 1, **postfix: float) -> None:
        if not self.enabled:
            return
        self.n += n
        text = ", ".join(f"{k}={v:.4g}" for k, v in postfix.items())
        if self._bar is not None:
            self._bar.update(n)
            if text:
                self._bar.set_postfix_str(text)
            return
        from tqdm import tqdm

        line = tqdm.format_meter(
            self.n, self.total, time.monotonic() - self._start, prefix=self.desc,
            unit="epoch", postfix=text or None, ncols=0,
        )
        print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
