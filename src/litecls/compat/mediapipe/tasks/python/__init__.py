"""``mediapipe.tasks.python`` (``mp.tasks``): ``BaseOptions``, ``vision``, ``components``."""

from __future__ import annotations

from litecls.compat.mediapipe.tasks.python import components, vision
from litecls.tasks.image_classifier_options import BaseOptions

__all__ = ["BaseOptions", "components", "vision"]
