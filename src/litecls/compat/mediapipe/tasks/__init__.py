"""``mediapipe.tasks``: the Tasks API lives in :mod:`litecls.compat.mediapipe.tasks.python`."""

from __future__ import annotations

from litecls.compat.mediapipe.tasks import python

__all__ = ["python"]
