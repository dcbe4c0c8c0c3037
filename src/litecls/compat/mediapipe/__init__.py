"""MediaPipe Tasks' image classifier and embedder on litecls: its examples run with one changed import.

::

    import litecls.compat.mediapipe as mp          # was: import mediapipe as mp
    from litecls.compat.mediapipe.tasks import python
    from litecls.compat.mediapipe.tasks.python import vision

    options = vision.ImageClassifierOptions(
        base_options=python.BaseOptions(model_asset_path="model.tflite"), max_results=4)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mp.Image.create_from_file("cat.jpg"))

MediaPipe's semantics, not litecls's defaults: every category unless
``max_results`` is set, scores as the model gives them (dequantized, no
softmax or renormalisation), the whole image squashed to the input size
(bilinear), unknown allowlist/denylist names ignored. What differs from
MediaPipe: resizing is PIL's anti-aliased bilinear filter (MediaPipe:
OpenCV's, without anti-aliasing), so scores agree exactly only for images
already of the input size; only the image classifier and the image embedder
are provided.
"""

from __future__ import annotations

from litecls.compat.mediapipe.image import Image, ImageFormat
from litecls.compat.mediapipe.tasks import python as tasks

__all__ = ["Image", "ImageFormat", "tasks"]
