"""A dependency-free progress bar on stderr for long evaluations."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done, total)`` redraws ``[#####.....] 12/40 images, 3.1/s``.

    On a terminal the bar redraws in place; otherwise (CI logs, pipes) it
    prints a line every 10 % so logs stay short. ``close()`` ends the line.
    """

    def __init__(self, label: str = "images", stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.started = time.perf_counter()
        self.tty = self.stream.isatty()
        self._last_decile = -1
        self._drawn = False

    def update(self, done: int, total: int, note: str = "") -> None:
        """Show ``done`` of ``total`` (and ``note`` after the rate, e.g. an error count)."""
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        fraction = done / total if total else 1.0
        text = f"{done}/{total} {self.label}, {rate:.1f}/s{f', {note}' if note else ''}"
        if self.tty:
            filled = int(fraction * self.width)
            print(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {text}", end="", file=self.stream,
                  flush=True)
            self._drawn = True
        elif int(fraction * 10) > self._last_decile:
            self._last_decile = int(fraction * 10)
            print(f"{100 * fraction:3.0f}% {text}", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar's line."""
        if self._drawn:
            print(file=self.stream, flush=True)
            self._drawn = False
