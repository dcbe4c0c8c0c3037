"""Keep the converters' and the quantizer's console output off the user's terminal.

litert-torch prints its conversion stages, absl and TensorFlow log lines,
torch and torchao warnings, and ai-edge-quantizer draws a calibration
progress bar: on file descriptors 1 and 2, from Python and native code
alike. While a conversion runs, both descriptors go to a temporary file;
afterwards its text goes to the ``litecls.export`` logger at INFO (what
``--verbose`` shows), or, when the conversion fails, to standard error
with the exception, so a failure keeps its context.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_log = logging.getLogger("litecls.export")
_LOCK = threading.Lock()


@contextlib.contextmanager
def converter_output_captured() -> Iterator[None]:
    """Capture what is written to file descriptors 1 and 2 meanwhile (see the module docstring).

    Raises:
        Whatever the body raises, after writing the captured output to standard error.
    """
    with _LOCK:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # no such descriptors (embedded): nothing to capture
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            failed = False
            try:
                yield
            except BaseException:
                failed = True
                raise
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace").replace("\r", "\n")
                lines = [line for line in text.splitlines() if line.strip()]
                if failed and lines:
                    print("\n".join(lines), file=sys.stderr, flush=True)
                elif lines:
                    _log.info("converter output:\n%s", "\n".join(lines))
