"""Capture what is written to file descriptors meanwhile, native code included.

LiteRT, litert-torch, absl and TensorFlow write from C++ straight to file
descriptors 1 and 2; Python's ``warnings``, ``logging`` and ``sys.stderr``
never see it. Redirecting the descriptors themselves is the one way to keep
it off a user's terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

#: One capture at a time per thread of control; re-entrant, so a capture may nest in another.
_LOCK = threading.RLock()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # closed or replaced streams: nothing to flush
            stream.flush()


@contextlib.contextmanager
def fds_captured(*fds: int) -> Iterator[list[str]]:
    """Send what is written to ``fds`` meanwhile to a temporary file.

    Args:
        fds: the file descriptors to capture (1 and/or 2).

    Yields:
        A list that, once the block has ended (normally or by an exception),
        holds the captured non-blank lines (carriage returns count as line
        breaks, so progress bars come out one state a line). Empty when a
        descriptor could not be duplicated (then nothing is captured).
    """
    lines: list[str] = []
    with _LOCK:
        _flush()
        saved: list[int] = []
        try:
            saved = [os.dup(fd) for fd in fds]
        except (OSError, ValueError):  # no such descriptor (embedded, closed): capture nothing
            for copy in saved:
                os.close(copy)
            yield lines
            return
        with tempfile.TemporaryFile() as sink:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            try:
                yield lines
            finally:
                _flush()
                for fd, copy in zip(fds, saved, strict=True):
                    os.dup2(copy, fd)
                    os.close(copy)
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace").replace("\r", "\n")
                lines.extend(line for line in text.splitlines() if line.strip())
