"""MediaPipe's own image embedder example, with only the import changed, against real MediaPipe.

The example is MediaPipe's Python image embedder sample (create options with
``l2_normalize`` and ``quantize``, embed two images, ``cosine_similarity``),
plus its VIDEO-mode variant from the guide. It runs once with
``import mediapipe as mp`` and once with ``import litecls.compat.mediapipe as mp``
on the zoo's EfficientNet-Lite0 embedding files (float32 and int8), on real
photos pre-resized to the input so that resampling plays no part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from photos import agreement_photos
from PIL import Image
from support import run_example

pytest.importorskip("mediapipe")

pytestmark = pytest.mark.zoo

MEDIAPIPE = "import mediapipe as mp"
LITECLS = "import litecls.compat.mediapipe as mp"

# MediaPipe's sample (image_embedder.ipynb); MODEL, IMAGES, L2, QUANTIZE filled in, the rest verbatim.
IMAGE_EXAMPLE = """
from {package}.tasks import python
from {package}.tasks.python import vision

base_options = python.BaseOptions(model_asset_path=MODEL)
l2_normalize = L2
quantize = QUANTIZE
options = vision.ImageEmbedderOptions(
    base_options=base_options, l2_normalize=l2_normalize, quantize=quantize)

results = []
with vision.ImageEmbedder.create_from_options(options) as embedder:
  first_image = mp.Image.create_from_file(IMAGES[0])
  second_image = mp.Image.create_from_file(IMAGES[1])
  first_embedding_result = embedder.embed(first_image)
  second_embedding_result = embedder.embed(second_image)
  similarity = vision.ImageEmbedder.cosine_similarity(
      first_embedding_result.embeddings[0],
      second_embedding_result.embeddings[0])
  results = [first_embedding_result, second_embedding_result, similarity]
"""

VIDEO_EXAMPLE = """
BaseOptions = mp.tasks.BaseOptions
ImageEmbedder = mp.tasks.vision.ImageEmbedder
ImageEmbedderOptions = mp.tasks.vision.ImageEmbedderOptions
VisionRunningMode = mp.tasks.vision.RunningMode

options = ImageEmbedderOptions(
    base_options=BaseOptions(model_asset_path=MODEL),
    quantize=False,
    running_mode=VisionRunningMode.VIDEO)

results = []
with ImageEmbedder.create_from_options(options) as embedder:
  for frame_timestamp_ms, numpy_frame_from_opencv in FRAMES:
    mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=numpy_frame_from_opencv)
    embedding_result = embedder.embed_for_video(mp_image, frame_timestamp_ms)
    results.append(embedding_result)
"""


@pytest.fixture(scope="module", params=["float32", "int8"])
def model(request, zoo_embedding) -> str:
    return str(zoo_embedding("efficientnet_lite0", request.param))


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[tuple[int, np.ndarray, str]]:
    """``(timestamp_ms, pixels, png path)`` of 8 real photos squashed to 224 x 224."""
    folder = tmp_path_factory.mktemp("resized")
    out = []
    for i, photo in enumerate(agreement_photos()[:8]):
        image = Image.open(photo).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        path = folder / f"{i:02d}.png"
        image.save(path)
        out.append((33 * i, np.asarray(image), str(path)))
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("l2", "quantize"), [(False, False), (True, False), (True, True)])
def test_image_example_gives_mediapipes_vectors(model, frames, l2, quantize) -> None:
    for pair in (frames[:2], frames[2:4], frames[4:6]):
        images = [path for _, _, path in pair]
        theirs = run_example(IMAGE_EXAMPLE, MEDIAPIPE, MODEL=model, IMAGES=images, L2=l2, QUANTIZE=quantize)
        ours = run_example(IMAGE_EXAMPLE, LITECLS, MODEL=model, IMAGES=images, L2=l2, QUANTIZE=quantize)
        for a, b in zip(ours[:2], theirs[:2], strict=True):
            [x], [y] = a.embeddings, b.embeddings
            assert (x.head_index, x.head_name) == (y.head_index, y.head_name)
            assert x.embedding.dtype == y.embedding.dtype and x.embedding.shape == y.embedding.shape
            if quantize:  # int8 bytes: at most one step apart (float rounding at a half)
                assert np.abs(x.embedding.view(np.int8).astype(int) - y.embedding.view(np.int8)).max() <= 1
            else:
                assert _cosine(x.embedding, y.embedding) >= 0.999
                np.testing.assert_allclose(x.embedding, y.embedding, rtol=1e-3,
                                           atol=1e-3 * float(np.abs(y.embedding).max()))
        assert ours[2] == pytest.approx(theirs[2], abs=0.01 if quantize else 1e-3)


def test_video_example_gives_mediapipes_vectors(model, frames) -> None:
    timed = [(ts, pixels) for ts, pixels, _ in frames]
    theirs = run_example(VIDEO_EXAMPLE, MEDIAPIPE, MODEL=model, FRAMES=timed)
    ours = run_example(VIDEO_EXAMPLE, LITECLS, MODEL=model, FRAMES=timed)
    for (ts, _), a, b in zip(timed, ours, theirs, strict=True):
        assert a.timestamp_ms == b.timestamp_ms == ts
        assert _cosine(a.embeddings[0].embedding, b.embeddings[0].embedding) >= 0.999


def test_full_size_photos_give_mediapipes_vectors(model) -> None:
    """Not pre-resized: the compat module warps each photo onto the input as MediaPipe does."""
    photos = [str(p) for p in agreement_photos()[8:14]]
    for pair in (photos[:2], photos[2:4], photos[4:6]):
        theirs = run_example(IMAGE_EXAMPLE, MEDIAPIPE, MODEL=model, IMAGES=pair, L2=True, QUANTIZE=False)
        ours = run_example(IMAGE_EXAMPLE, LITECLS, MODEL=model, IMAGES=pair, L2=True, QUANTIZE=False)
        for a, b in zip(ours[:2], theirs[:2], strict=True):
            cosine = _cosine(a.embeddings[0].embedding, b.embeddings[0].embedding)
            print(f"\n{Path(model).name}: cosine with MediaPipe's vector {cosine:.6f}")
            assert cosine >= 0.999
