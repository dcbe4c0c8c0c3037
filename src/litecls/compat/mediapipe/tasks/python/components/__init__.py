"""``mediapipe.tasks.python.components``: the result and geometry containers."""

from __future__ import annotations

from litecls.compat.mediapipe.tasks.python.components import containers

__all__ = ["containers"]
