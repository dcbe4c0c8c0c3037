"""MediaPipe Tasks' API on litecls.tasks: running modes, model sources, image processing options, options.

Real zoo model, real photos (OpenCV's samples), the real LiteRT runtime.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litecls.errors import DelegateError, ImageError, ModelFileError
from litecls.processing.region import BoundingBox, ImageProcessingOptions, RectF
from litecls.tasks import (
    BaseOptions,
    Category,
    ClassificationResult,
    ImageClassifier,
    ImageClassifierOptions,
    RunningMode,
)

pytestmark = [pytest.mark.core, pytest.mark.zoo]  # core install; reads zoo files from the test cache

PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
_NAMES = ("aero1.jpg", "apple.jpg", "baboon.jpg", "butterfly.jpg", "fruits.jpg", "orange.jpg",
          "squirrel_cls.jpg", "messi5.jpg")


@pytest.fixture(scope="module")
def model(zoo_model) -> Path:
    return zoo_model("mobilenet_v2", "int8")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [np.asarray(Image.open(PHOTOS / name).convert("RGB")) for name in _NAMES]


def _options(model: Path, **kw) -> ImageClassifierOptions:
    return ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)), max_results=-1, **kw)


def _scores(result: ClassificationResult) -> np.ndarray:
    return np.array([c.score for c in sorted(result.categories, key=lambda c: c.index)])


def test_each_mode_refuses_the_methods_of_the_others(model: Path, photos) -> None:
    image = photos[0]
    with ImageClassifier.create_from_options(_options(model)) as classifier:
        with pytest.raises(ValueError, match=r"not initialized with the video mode.*image mode"):
            classifier.classify_for_video(image, 0)
        with pytest.raises(ValueError, match="not initialized with the live stream mode"):
            classifier.classify_async(image, 0)
    with ImageClassifier.create_from_options(_options(model, running_mode=RunningMode.VIDEO)) as classifier:
        with pytest.raises(ValueError, match=r"not initialized with the image mode.*video mode"):
            classifier.classify(image)
        with pytest.raises(ValueError, match="image mode"):
            list(classifier.classify_many([image]))
    with pytest.raises(ValueError, match="callback must be provided"):
        _options(model, running_mode=RunningMode.LIVE_STREAM)
    with pytest.raises(ValueError, match="callback should not be provided"):
        _options(model, result_callback=lambda *a: None)


def test_video_mode_needs_increasing_timestamps_and_gives_image_mode_scores(model: Path, photos) -> None:
    with ImageClassifier.create_from_options(_options(model)) as still:
        expected = [_scores(still.classify(p)) for p in photos[:3]]
        assert still.classify(photos[0]).timestamp_ms == 0
    with ImageClassifier.create_from_options(_options(model, running_mode=RunningMode.VIDEO)) as video:
        for i, photo in enumerate(photos[:3]):
            result = video.classify_for_video(photo, 40 * i)
            assert result.timestamp_ms == 40 * i
            np.testing.assert_array_equal(_scores(result), expected[i])
        for bad in (80, 79):  # equal to the last, then earlier
            with pytest.raises(ValueError, match="monotonically increasing"):
                video.classify_for_video(photos[0], bad)
        with pytest.raises(ValueError, match="integer"):
            video.classify_for_video(photos[0], 100.5)
        assert video.classify_for_video(photos[0], 81).timestamp_ms == 81


def test_live_stream_drops_frames_while_busy_keeps_order_and_closes_promptly(model: Path, photos) -> None:
    calls: list[tuple[int, int, float]] = []
    threads: set[str] = set()

    def callback(result: ClassificationResult, image: np.ndarray, timestamp_ms: int) -> None:
        threads.add(threading.current_thread().name)
        calls.append((timestamp_ms, result.timestamp_ms, time.perf_counter()))
        assert isinstance(image, np.ndarray) and result.categories

    options = _options(model, running_mode=RunningMode.LIVE_STREAM, result_callback=callback)
    classifier = ImageClassifier.create_from_options(options)
    with ImageClassifier.create_from_options(_options(model)) as still:
        started = time.perf_counter()
        for photo in photos:
            still.classify(photo)
        inference_s = (time.perf_counter() - started) / len(photos)
    frames = 400
    started = time.perf_counter()
    for ts in range(frames):  # far faster than the model: each call must return at once
        assert classifier.classify_async(photos[ts % len(photos)], ts) is None
    submit_s = time.perf_counter() - started
    with pytest.raises(ValueError, match="monotonically increasing"):
        classifier.classify_async(photos[0], frames - 1)
    with pytest.raises(ValueError, match="image mode"):
        classifier.classify(photos[0])
    closing = time.perf_counter()
    classifier.close()
    close_s = time.perf_counter() - closing
    stats = classifier.live_stream_stats
    assert stats is not None and stats.submitted == frames
    assert stats.classified == len(calls) and stats.classified + stats.dropped + stats.failed == frames
    assert stats.dropped > 0 and stats.failed == 0
    stamps = [c[0] for c in calls]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(a == b for a, b, _ in calls)
    assert stamps[0] == 0  # the first frame found the worker idle
    # close() waits for the frame in flight only (the waiting one is dropped): at most one
    # callback after it began, so it returns within one inference (the time is printed below).
    assert sum(at > closing for _, _, at in calls) <= 1
    assert len(threads) == 1 and threading.main_thread().name not in threads
    n = len(calls)
    time.sleep(0.05)
    assert len(calls) == n  # nothing runs after close()
    with pytest.raises(RuntimeError, match="closed"):
        classifier.classify_async(photos[0], frames + 10)
    print(f"\nlive stream: {frames} frames submitted in {submit_s * 1000:.1f} ms, {stats.classified} "
          f"classified, {stats.dropped} dropped; one inference {inference_s * 1000:.1f} ms, "
          f"close() {close_s * 1000:.1f} ms")


def test_live_stream_copies_the_frame_so_the_caller_may_reuse_its_buffer(model: Path, photos) -> None:
    got: list[np.ndarray] = []
    buffer = photos[0].copy()
    options = _options(model, running_mode=RunningMode.LIVE_STREAM,
                       result_callback=lambda r, image, ts: got.append(_scores(r)))
    with ImageClassifier.create_from_options(options) as classifier:
        classifier.classify_async(buffer, 1)
        buffer[:] = 0  # the camera overwrites its buffer
    with ImageClassifier.create_from_options(_options(model)) as still:
        np.testing.assert_array_equal(got[0], _scores(still.classify(photos[0])))


def test_region_of_interest_and_rotation_equal_cutting_and_turning_the_image(model: Path, photos) -> None:
    photo = photos[2]
    height, width = photo.shape[:2]
    box = BoundingBox(origin_x=width // 4, origin_y=height // 5, width=width // 2, height=height // 2)
    cut = photo[box.origin_y:box.origin_y + box.height, box.origin_x:box.origin_x + box.width]
    rect = RectF(left=box.origin_x / width, top=box.origin_y / height,
                 right=(box.origin_x + box.width) / width, bottom=(box.origin_y + box.height) / height)
    with ImageClassifier.create_from_options(_options(model)) as classifier:
        plain = _scores(classifier.classify(photo))
        np.testing.assert_array_equal(
            _scores(classifier.classify(photo, ImageProcessingOptions(region_of_interest=box))),
            _scores(classifier.classify(np.ascontiguousarray(cut))))
        np.testing.assert_array_equal(
            _scores(classifier.classify(photo, ImageProcessingOptions(region_of_interest=rect))),
            _scores(classifier.classify(np.ascontiguousarray(cut))))
        for degrees, turns in ((90, -1), (-90, 1), (180, 2), (270, 1), (-270, -1), (360, 0)):
            turned = _scores(classifier.classify(photo, ImageProcessingOptions(rotation_degrees=degrees)))
            np.testing.assert_array_equal(turned, _scores(classifier.classify(
                np.ascontiguousarray(np.rot90(photo, turns)))), err_msg=f"{degrees} degrees")
        both = ImageProcessingOptions(region_of_interest=box, rotation_degrees=90)  # cut, then turn
        np.testing.assert_array_equal(_scores(classifier.classify(photo, both)),
                                      _scores(classifier.classify(np.ascontiguousarray(np.rot90(cut, -1)))))
        assert not np.array_equal(_scores(classifier.classify(photo, both)), plain)
        with pytest.raises(ValueError, match="extends past"):
            classifier.classify(photo, ImageProcessingOptions(
                region_of_interest=BoundingBox(0, 0, width + 1, 5)))
    with ImageClassifier.create_from_options(_options(model, running_mode=RunningMode.VIDEO)) as video:
        np.testing.assert_array_equal(
            _scores(video.classify_for_video(photo, 1, ImageProcessingOptions(region_of_interest=box))),
            _scores(video.classify_for_video(np.ascontiguousarray(cut), 2)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rotation_degrees": 45}, "multiple of 90"),
    ({"rotation_degrees": "90"}, "multiple of 90"),
    ({"region_of_interest": RectF(left=0.5, top=0.1, bottom=0.9, right=0.4)}, "left < right"),
    ({"region_of_interest": RectF(left=0.1, top=0.5, bottom=0.5, right=0.4)}, "top < bottom"),
    ({"region_of_interest": RectF(left=-0.1, top=0.1, bottom=0.9, right=0.4)}, r"in \[0,1\]"),
    ({"region_of_interest": RectF(left=0.1, top=0.1, bottom=1.5, right=0.4)}, r"in \[0,1\]"),
    ({"region_of_interest": RectF(left=float("nan"), top=0.1, bottom=0.5, right=0.4)}, "finite"),
    ({"region_of_interest": BoundingBox(origin_x=-1, origin_y=0, width=5, height=5)}, "origin >= 0"),
    ({"region_of_interest": BoundingBox(origin_x=0, origin_y=0, width=0, height=5)}, "width, height > 0"),
    ({"region_of_interest": (0, 0, 1, 1)}, "RectF"),
])
def test_invalid_image_processing_options_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageProcessingOptions(**kwargs)


def test_model_bytes_give_the_same_results_as_the_path(model: Path, photos) -> None:
    by_bytes = ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=model.read_bytes()),
                                      max_results=-1)
    with ImageClassifier.create_from_options(by_bytes) as a, \
            ImageClassifier.create_from_options(_options(model)) as b:
        np.testing.assert_array_equal(_scores(a.classify(photos[1])), _scores(b.classify(photos[1])))
        assert a.labels == b.labels


def test_model_source_and_delegate_errors_have_mediapipes_builtin_types(model: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such model file"):
        ImageClassifier.create_from_options(_options(tmp_path / "missing.tflite"))
    with pytest.raises(FileNotFoundError, match="not a zoo model"):
        ImageClassifier.create_from_model_path("resnet9000")
    with pytest.raises(ValueError, match="no model"):
        ImageClassifierOptions(base_options=BaseOptions())
    with pytest.raises(ValueError, match="not both"):
        ImageClassifierOptions(model_path=str(model), base_options=BaseOptions(model_asset_path=str(model)))
    with pytest.raises(ValueError, match="not a TFLite model"):
        ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=BaseOptions(model_asset_buffer=b"not a model at all")))
    assert issubclass(ModelFileError, ValueError) and issubclass(ImageError, ValueError)
    gpu = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model),
                                                          delegate=BaseOptions.Delegate.GPU))
    with pytest.raises(RuntimeError, match="GPU is not available") as info:
        ImageClassifier.create_from_options(gpu)
    assert isinstance(info.value, DelegateError)
    cpu = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model),
                                                          delegate=BaseOptions.Delegate.CPU), num_threads=2)
    with ImageClassifier.create_from_options(cpu) as classifier:
        assert classifier.classify(np.zeros((224, 224, 3), np.uint8)).categories


def test_empty_lists_and_none_mean_the_defaults(model: Path, photos) -> None:
    photo = photos[4]
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=str(model))) as plain:
        expected = plain.classify(photo)
    for kwargs in ({"category_allowlist": []}, {"category_denylist": []}, {"max_results": None},
                   {"score_threshold": None}, {"display_names_locale": None},
                   {"category_allowlist": [], "category_denylist": []}):
        options = ImageClassifierOptions(model_path=str(model), **kwargs)
        with ImageClassifier.create_from_options(options) as c:
            result = c.classify(photo)
            assert result.categories == expected.categories, kwargs
            assert len(result.categories) == 5


def test_category_fields_are_in_mediapipes_order_and_the_first_head_is_the_shortcut(model: Path,
                                                                                     photos) -> None:
    assert [f for f in Category.__dataclass_fields__] == ["index", "score", "display_name", "category_name"]
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=str(model))) as classifier:
        result = classifier.classify(photos[0])
    assert len(result.classifications) == 1
    head = result.classifications[0]
    assert head.head_index == 0 and head.head_name == classifier.metadata.head_name == "score"
    assert result.categories is head.categories and result.top == head.categories[0]
    top = result.top
    assert top.category_name == classifier.labels[top.index]
    assert top.display_name == classifier.display_names[top.index]


def test_a_live_stream_classifier_dropped_without_close_ends_its_worker(model: Path, photos) -> None:
    import gc

    got: list[int] = []
    options = _options(model, running_mode=RunningMode.LIVE_STREAM,
                       result_callback=lambda r, image, ts: got.append(ts))
    classifier = ImageClassifier.create_from_options(options)
    classifier.classify_async(photos[0], 1)
    worker = classifier._live._thread
    deadline = time.perf_counter() + 30
    while not got and time.perf_counter() < deadline:
        time.sleep(0.01)
    del classifier
    gc.collect()
    worker.join(timeout=30)
    assert got == [1] and not worker.is_alive()
