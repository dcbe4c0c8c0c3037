"""ImageEmbedder on the zoo's embedding files (EfficientNet-Lite0, float32 and int8) and real photos.

The embedding files are the zoo classifiers cut before their classifier
layer (litecls.export.embedding). What issue 16 asks of them: a photo and
its mirrored or JPEG-q75 copy have cosine similarity >= 0.9, photos of other
classes clearly less; the figures of both precisions are printed (``-s``).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from litecls.errors import ImageError, ModelNotFoundError
from litecls.metadata import read_metadata
from litecls.runtime import describe_classifier, load_interpreter
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import (
    BaseOptions,
    Embedding,
    ImageEmbedder,
    ImageEmbedderOptions,
    RunningMode,
    cosine_similarity,
)

pytestmark = pytest.mark.zoo

MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module", params=["float32", "int8"])
def embedding_file(request, zoo_embedding) -> Path:
    return zoo_embedding(MODEL, request.param)


@pytest.fixture(scope="module")
def photos() -> list[tuple[Path, int]]:
    return labelled_imagenet_photos()


def _jpeg75(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return buffer.getvalue()


def test_zoo_embedding_file_is_the_pooled_feature_vector(embedding_file, zoo_embedding, zoo_model) -> None:
    precision = embedding_file.name.rsplit("-", 1)[1].removesuffix(".tflite")
    assert embedding_file.name == f"{MODEL}-embedding-{precision}.tflite"
    assert Path(f"{embedding_file}.sha256").is_file()
    signature = describe_classifier(load_interpreter(embedding_file))
    classifier = describe_classifier(load_interpreter(zoo_model(MODEL, precision)))
    # The same input convention as the classifier (uint8 raw pixels for int8).
    same = ("shape", "dtype", "scale", "zero_point")
    assert [getattr(signature.input, k) for k in same] == [getattr(classifier.input, k) for k in same]
    assert signature.output.shape == (1, 1280) and signature.output.dtype == np.float32
    meta = read_metadata(embedding_file)
    assert meta.embedding and meta.head_name == "embedding" and not meta.labels
    assert meta.processing == read_metadata(zoo_model(MODEL, precision)).processing
    stamp = embedding_file.stat().st_mtime_ns
    assert zoo_embedding(MODEL, precision) == embedding_file and embedding_file.stat().st_mtime_ns == stamp


def test_copies_are_similar_and_other_classes_are_not(embedding_file, photos) -> None:
    """Mirrored and JPEG-q75 copies >= 0.9; every photo of another class well below its copies."""
    with ImageEmbedder.create_from_model_path(str(embedding_file)) as embedder:
        originals, mirrored, recoded = [], [], []
        for path, _label in photos:
            image = Image.open(path).convert("RGB")
            originals.append(embedder.embed(image).embeddings[0])
            mirrored.append(embedder.embed(ImageOps.mirror(image)).embeddings[0])
            recoded.append(embedder.embed(_jpeg75(image)).embeddings[0])
    labels = [label for _, label in photos]
    mirror = np.array([cosine_similarity(a, b) for a, b in zip(originals, mirrored, strict=True)])
    jpeg = np.array([cosine_similarity(a, b) for a, b in zip(originals, recoded, strict=True)])
    others = np.array([[cosine_similarity(originals[i], originals[j]) for j in range(len(photos))
                        if labels[j] != labels[i]] for i in range(len(photos))], dtype=object)
    highest_other = np.array([max(row) for row in others])
    print(f"\n{embedding_file.name}: mirrored min {mirror.min():.3f} mean {mirror.mean():.3f}; "
          f"JPEG q75 min {jpeg.min():.3f} mean {jpeg.mean():.3f}; other class max {highest_other.max():.3f} "
          f"mean {np.mean(np.concatenate(others)):.3f} ({len(photos)} photos)")
    assert mirror.min() >= 0.9 and jpeg.min() >= 0.9
    assert np.all(highest_other < np.minimum(mirror, jpeg) - 0.3)


def test_api_as_mediapipe_defines_it(embedding_file, photos) -> None:
    path = str(embedding_file)
    image = Image.open(photos[0][0]).convert("RGB")
    with ImageEmbedder.create_from_options(ImageEmbedderOptions(
            base_options=BaseOptions(model_asset_buffer=embedding_file.read_bytes()))) as embedder:
        plain = embedder.embed(image)
        assert plain.timestamp_ms == 0 and len(plain.embeddings) == 1
        first = plain.embeddings[0]
        assert (first.head_index, first.head_name) == (0, "embedding")
        assert first.embedding.dtype == np.float32
        assert first.embedding.shape == (embedder.dimension,) == (1280,)
    options = ImageEmbedderOptions(model_path=path, l2_normalize=True, quantize=True)
    with ImageEmbedder.create_from_options(options) as quantizer:
        quantized = quantizer.embed(image).embedding
    assert quantized.dtype == np.int8
    unit = first.embedding / np.linalg.norm(first.embedding)
    assert np.abs(quantized.astype(int) - np.clip(np.round(unit * 128), -128, 127)).max() <= 1
    assert cosine_similarity(quantized, quantized) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="quantized and float"):
        ImageEmbedder.cosine_similarity(Embedding(quantized), first)
    with pytest.raises(ValueError, match="different sizes"):
        ImageEmbedder.cosine_similarity(first, Embedding(first.embedding[:10]))
    with pytest.raises(ValueError, match="0 norm"):
        cosine_similarity(np.zeros(3), np.ones(3))


def test_running_modes_batches_and_bad_images(embedding_file, photos, tmp_path) -> None:
    path = str(embedding_file)
    images = [Image.open(p).convert("RGB") for p, _ in photos[:5]]
    with ImageEmbedder.create_from_model_path(path) as embedder:
        single = np.stack([embedder.embed(image).embedding for image in images])
        tensors = np.concatenate([embedder.preprocess(image) for image in images])
        batched = embedder.embed_tensors(tensors)
        assert batched.shape == (5, 1280) and batched.dtype == np.float32
        np.testing.assert_allclose(batched, single, rtol=0, atol=1e-4 * float(np.abs(single).max()))
        np.testing.assert_array_equal(embedder.embed(images[0]).embedding, single[0])  # back to batch 1
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(b"\xff\xd8\xff not really a JPEG")
        streamed = list(embedder.embed_many([images[0], broken, *images[1:]], batch_size=2))
        assert [item is broken for item, _ in streamed] == [False, True, False, False, False, False]
        assert isinstance(streamed[1][1], ImageError) and "broken.jpg" in str(streamed[1][1])
        vectors = np.stack([v for _, v in streamed if not isinstance(v, Exception)])
        np.testing.assert_allclose(vectors, single, rtol=0, atol=1e-4 * float(np.abs(single).max()))
        with pytest.raises(ValueError, match=r"video mode.*use embed\(\)"):
            embedder.embed_for_video(images[0], 0)
    with pytest.raises(RuntimeError, match="closed"):
        embedder.embed(images[0])
    with ImageEmbedder.create_from_options(ImageEmbedderOptions(
            model_path=path, running_mode=RunningMode.VIDEO)) as video:
        result = video.embed_for_video(images[1], 40)
        assert result.timestamp_ms == 40
        np.testing.assert_array_equal(result.embedding, single[1])
        with pytest.raises(ValueError, match="monotonically increasing"):
            video.embed_for_video(images[1], 40)
    delivered = []
    with ImageEmbedder.create_from_options(ImageEmbedderOptions(
            model_path=path, running_mode=RunningMode.LIVE_STREAM,
            result_callback=lambda result, image, ts: delivered.append((ts, result)))) as live:
        for ts, image in enumerate(images):
            live.embed_async(np.asarray(image), ts * 100)
            deadline = time.monotonic() + 30
            while live.live_stream_stats.classified <= ts and time.monotonic() < deadline:
                time.sleep(0.005)  # a camera slower than the model: nothing is dropped
        for ts in range(500, 530):  # a camera far faster than the model: frames are dropped
            live.embed_async(np.asarray(images[0]), ts)
        stats = live.live_stream_stats
    stamps = [ts for ts, _ in delivered]
    assert stamps[:5] == [0, 100, 200, 300, 400] and stamps == sorted(stamps)
    assert stats.dropped > 0 and stats.submitted == 35
    for ts, result in delivered:
        assert cosine_similarity(result.embedding, single[ts // 100 if ts < 500 else 0]) > 0.999


def test_zoo_names_resolve_to_the_embedding_file(zoo_embedding, zoo_cache, photos) -> None:
    path = zoo_embedding(MODEL, "int8")
    options = ImageEmbedderOptions(model_path=f"{MODEL}:int8", cache_dir=zoo_cache)
    with ImageEmbedder.create_from_options(options) as by_name, \
            ImageEmbedder.create_from_model_path(str(path)) as by_path:
        np.testing.assert_array_equal(by_name.embed(photos[0][0]).embedding,
                                      by_path.embed(photos[0][0]).embedding)
    with pytest.raises(ModelNotFoundError, match="not a zoo model"):
        ImageEmbedder.create_from_model_path("no_such_model")
