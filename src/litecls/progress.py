"""What litecls says while it works: one logger for its messages, one progress bar for long work.

Messages (``say``) go to the ``litecls`` logger at INFO; when they are
asked for (``show``), they are written to standard error as plain lines,
``[HH:MM:SS] message`` with ``stamp``. Silence or redirect them with the
``logging`` module (e.g. ``logging.getLogger("litecls").setLevel(logging.WARNING)``).
Long work draws a :class:`ProgressBar` (no dependency) or, in training,
:func:`batch_bar` (tqdm, with running loss and accuracy).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

_log = logging.getLogger("litecls")


class _StderrHandler(logging.Handler):
    """Writes each record's message to the current ``sys.stderr`` (looked up at each write)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


_shown = logging.getLogger("litecls.progress")
_shown.addHandler(_StderrHandler())
_shown.propagate = False  # printed once, also under --verbose's root handler
_shown.setLevel(logging.INFO)


def say(message: str, show: bool = True, stamp: bool = False) -> None:
    """Tell the user what is happening now.

    Args:
        message: one line of text.
        show: write it to standard error (through the ``litecls.progress``
            logger); otherwise it is only logged to ``litecls`` at DEBUG.
        stamp: prefix the time of day, ``[HH:MM:SS]``.
    """
    if stamp:
        message = f"[{time.strftime('%H:%M:%S')}] {message}"
    if show:
        _shown.info(message)
    else:
        _log.debug(message)


def stamped(message: str) -> None:
    """``say(message, stamp=True)``: the progress callback the command line hands to long jobs.

    Args:
        message: one line of text.
    """
    say(message, stamp=True)


def batch_bar(total: int, desc: str, show: bool, unit: str = "batch", leave: bool = True) -> tqdm:
    """A tqdm bar on standard error for training loops (needs the ``train`` extra).

    Args:
        total: steps expected.
        desc: the label before the bar.
        show: draw it (a disabled bar still counts).
        unit: what one step is.
        leave: keep the finished bar on screen.

    Returns:
        A ``tqdm`` object; use it as a context manager.
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not show, file=sys.stderr,
                leave=leave, dynamic_ncols=True, mininterval=0.5)


class ProgressBar:
    """``update(done, total)`` redraws ``[#####.....] 12/40 images, 3.1/s``.

    On a terminal the bar redraws in place; otherwise (CI logs, pipes) it
    prints a line every 10 % so logs stay short. ``close()`` ends the line.

    Args:
        label: what is counted ("images").
        stream: where to draw (default: standard error).
        width: characters of the bar.
    """

    def __init__(self, label: str = "images", stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.started = time.perf_counter()
        self.tty = self.stream.isatty()
        self._last_decile = -1
        self._drawn = False

    def update(self, done: int, total: int, note: str = "") -> None:
        """Show ``done`` of ``total``.

        Args:
            done: items finished.
            total: items in all.
            note: shown after the rate (e.g. an error count); empty for none.
        """
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
