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
import sys
from collections.abc import Iterator

from litecls.runtime.capture import fds_captured

_log = logging.getLogger("litecls.export")


@contextlib.contextmanager
def converter_output_captured() -> Iterator[None]:
    """Capture what is written to file descriptors 1 and 2 meanwhile (see the module docstring).

    Raises:
        Whatever the body raises, after writing the captured output to standard error.
    """
    lines: list[str] = []
    try:
        with fds_captured(1, 2) as lines:
            yield
    except BaseException:
        if lines:
            print("\n".join(lines), file=sys.stderr, flush=True)
        raise
    if lines:
        _log.info("converter output:\n%s", "\n".join(lines))
