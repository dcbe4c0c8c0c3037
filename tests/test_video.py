"""Video mode: real photos encoded into video files with PyAV, decoded, sampled and classified."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from litecls.cli.main import main
from litecls.models.zoo import DEFAULT_MODEL
from litecls.processing.video import VideoError, is_video, probe_video, read_frames
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ClassificationResult, ImageClassifier, ImageClassifierOptions
from litecls.tasks.video import VideoThroughput, classify_video

ZooModel = Callable[[str, str], Path]
RATE = 10  # frames per second of the test videos
SIZE = (320, 240)  # width, height


def photo_frame(path: Path, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A real photo scaled and centre-cropped to fill a video frame of ``size`` (width, height)."""
    image = Image.open(path).convert("RGB")
    width, height = size
    scale = max(width / image.width, height / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def write_video(path: Path, frames: list[np.ndarray], codec: str = "libx264", pix_fmt: str = "yuv420p",
                seconds_each: float = 1.0, options: dict[str, str] | None = None, rotation: int = 0) -> Path:
    """Encode each frame for ``seconds_each`` seconds at :data:`RATE` fps, as a camera would store it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.bit_rate = 8_000_000  # mpeg4 and vp8 default to a bit rate too low for 320x240 photos
        if options:
            stream.options = options
        if rotation:
            stream.set_display_rotation(rotation)
        count = 0
        for pixels in frames:
            for _ in range(round(seconds_each * RATE)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, count = count, count + 1  # in units of the stream's 1/RATE time base
                container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def classifier(zoo_model: ZooModel) -> ImageClassifier:
    options = ImageClassifierOptions(model_path=zoo_model(DEFAULT_MODEL, "int8"), max_results=5)
    with ImageClassifier.create_from_options(options) as shared:
        yield shared


@pytest.fixture(scope="module")
def photo_frames() -> list[np.ndarray]:
    """Six labelled ImageNet photos as 320x240 frames."""
    return [photo_frame(path) for path, _ in labelled_imagenet_photos()[:6]]


@pytest.fixture(scope="module")
def photo_results(classifier: ImageClassifier, photo_frames: list[np.ndarray]) -> list[ClassificationResult]:
    """What the classifier says about each frame as a still image."""
    return [classifier.classify(frame) for frame in photo_frames]


@pytest.fixture(scope="module")
def phone_video(tmp_path_factory: pytest.TempPathFactory, photo_frames: list[np.ndarray]) -> Path:
    """H.264 4:2:0 in MP4, as phones record: six photos, one second each, 10 fps."""
    return write_video(tmp_path_factory.mktemp("video") / "photos.mp4", photo_frames, options={"crf": "18"})


def same_answer(got_top1: int, expected: ClassificationResult, clear_lead: float = 0.15) -> bool:
    """Whether a frame's top class is the photo's answer, allowing for near-ties.

    Compression moves scores a little: where the photo's top two classes are
    within ``clear_lead`` of each other (one of the six photos is 0.52 vs
    0.47), either of them is the photo's answer.
    """
    first, second = expected.categories[:2]
    if first.score - second.score >= clear_lead:
        return got_top1 == first.index
    return got_top1 in (first.index, second.index)


# -- decoding and sampling ------------------------------------------------------------------------


@pytest.mark.zoo
def test_lossless_video_frames_classify_exactly_as_the_photos(classifier, photo_frames, photo_results,
                                                              tmp_path: Path) -> None:
    # RGB H.264 at qp 0 is lossless, so any difference would be ours: colour, size, frame choice.
    video = write_video(tmp_path / "lossless.mkv", photo_frames, codec="libx264rgb", pix_fmt="rgb24",
                        options={"qp": "0"})
    frames = list(read_frames(video, fps=2))
    assert [f.timestamp for f in frames] == pytest.approx([i / 2 for i in range(12)], abs=1e-6)
    assert [f.index for f in frames] == [i * RATE // 2 for i in range(12)]
    for frame in frames:
        assert np.array_equal(frame.image, photo_frames[int(frame.timestamp)])

    results = list(classify_video(classifier, video, fps=2))
    assert len(results) == 12
    for got in results:
        expected = photo_results[int(got.timestamp)]
        assert [c.index for c in got.result.categories] == [c.index for c in expected.categories]
        assert [c.score for c in got.result.categories] == pytest.approx(
            [c.score for c in expected.categories], abs=1e-6)


@pytest.mark.zoo
def test_phone_video_frames_classify_as_the_photos_do(classifier, phone_video, photo_results) -> None:
    results = list(classify_video(classifier, phone_video, fps=2))
    assert [round(r.timestamp, 3) for r in results] == [i / 2 for i in range(12)]
    for got in results:
        expected = photo_results[int(got.timestamp)]
        # 4:2:0 compression moves scores a little; the answer stays.
        assert same_answer(got.result.categories[0].index, expected)
        assert got.result.categories[0].score == pytest.approx(
            next((c.score for c in expected.categories if c.index == got.result.categories[0].index), 0),
            abs=0.2)
    labels = [label for _, label in labelled_imagenet_photos()[:6]]
    assert sum(r.result.categories[0].index == labels[int(r.timestamp)] for r in results) >= 10


@pytest.mark.zoo
@pytest.mark.parametrize(("suffix", "codec"), [(".avi", "mpeg4"), (".webm", "libvpx"), (".mov", "mjpeg")])
def test_other_containers_and_codecs(classifier, photo_frames, photo_results, tmp_path: Path,
                                     suffix: str, codec: str) -> None:
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    video = write_video(tmp_path / f"photos{suffix}", photo_frames[:3], codec=codec, pix_fmt=pix_fmt)
    assert is_video(video)
    results = list(classify_video(classifier, video, fps=1))
    assert [round(r.timestamp, 3) for r in results] == [0.0, 1.0, 2.0]
    for got, expected in zip(results, photo_results[:3], strict=True):
        assert same_answer(got.result.categories[0].index, expected)


@pytest.mark.zoo
def test_every_frame_and_rates_above_the_videos(classifier, phone_video) -> None:
    every = list(read_frames(phone_video, fps=None))
    assert [f.index for f in every] == list(range(6 * RATE))
    assert [f.timestamp for f in every] == pytest.approx([i / RATE for i in range(6 * RATE)], abs=1e-6)
    # Asking for more frames than the video has gives each frame once.
    assert [f.index for f in read_frames(phone_video, fps=25)] == list(range(6 * RATE))
    assert [f.index for f in read_frames(phone_video, fps=0.4)] == [0, 25, 50]
    assert len(list(classify_video(classifier, phone_video, fps=None))) == 6 * RATE


@pytest.mark.core
def test_probe_video(phone_video) -> None:
    info = probe_video(phone_video)
    assert (info.codec, info.width, info.height, info.rotation) == ("h264", 320, 240, 0)
    assert info.fps == pytest.approx(RATE)
    assert info.duration == pytest.approx(6.0, abs=0.11)
    assert info.frames == 6 * RATE


@pytest.mark.zoo
def test_display_rotation_is_applied(classifier, photo_frames, photo_results, tmp_path: Path) -> None:
    # A phone held upright stores the picture turned a quarter clockwise and says so in the
    # display matrix: turning it back counter-clockwise shows it upright.
    stored = [np.ascontiguousarray(np.rot90(frame, k=-1)) for frame in photo_frames[:2]]
    video = write_video(tmp_path / "portrait.mp4", stored, codec="libx264rgb", pix_fmt="rgb24",
                        options={"qp": "0"}, rotation=90)
    info = probe_video(video)
    assert (info.rotation, info.width, info.height) == (90, 320, 240)
    frames = list(read_frames(video, fps=1))
    assert all(np.array_equal(f.image, photo_frames[i]) for i, f in enumerate(frames))
    for got, expected in zip(classify_video(classifier, video, fps=1), photo_results[:2], strict=True):
        assert got.result.categories[0].index == expected.categories[0].index


@pytest.mark.zoo
def test_large_frames_are_scaled_down_while_decoding(classifier, tmp_path: Path) -> None:
    path, label = labelled_imagenet_photos()[1]  # the folding chair, a confident photo
    frame = photo_frame(path, (1920, 1080))
    video = write_video(tmp_path / "hd.mp4", [frame], seconds_each=0.5, options={"crf": "18"})
    small = next(read_frames(video, fps=1, min_side=512))
    assert small.image.shape == (512, 910, 3)
    assert next(read_frames(video, fps=1)).image.shape == (1080, 1920, 3)
    got = next(classify_video(classifier, video, fps=1)).result
    assert got.categories[0].index == label == classifier.classify(frame).categories[0].index


@pytest.mark.zoo
def test_stopping_early_ends_the_decoding_thread(classifier, phone_video) -> None:
    stream = classify_video(classifier, phone_video, fps=None)
    first = next(stream)
    assert first.index == 0 and any(t.name == "litecls-video-decode" for t in threading.enumerate())
    stream.close()
    assert not any(t.name == "litecls-video-decode" for t in threading.enumerate())


# -- bad videos ----------------------------------------------------------------------------------


@pytest.mark.zoo
def test_bad_video_files_raise_specific_errors(classifier, phone_video, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    cut = tmp_path / "cut.mp4"  # an MP4 whose index (at the end) was never written
    cut.write_bytes(phone_video.read_bytes()[: phone_video.stat().st_size // 2])
    audio = tmp_path / "sound.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        samples.sample_rate = 16000
        container.mux(stream.encode(samples))
        container.mux(stream.encode())
    cases = [(empty, "empty file"), (text, "not a video file"), (cut, "truncated or damaged MP4/MOV file"),
             (audio, "has no video stream"), (tmp_path / "missing.mp4", "no such file"),
             (tmp_path, "is a directory")]
    for path, message in cases:
        with pytest.raises(VideoError, match=message) as caught:
            list(classify_video(classifier, path, fps=1))
        assert str(path) in str(caught.value)
        with pytest.raises(VideoError, match=message):
            probe_video(path)


@pytest.mark.zoo
def test_a_cut_off_avi_yields_its_frames_then_says_it_is_truncated(classifier, photo_frames,
                                                                   photo_results, tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.avi", photo_frames, codec="mpeg4")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    got = []
    with pytest.raises(VideoError, match=r"truncated: the stream stops after \d+ of the 60 frames"):
        for frame in classify_video(classifier, cut, fps=1):
            got.append(frame)
    assert 1 <= len(got) < 6
    for frame in got:
        assert frame.result.categories[0].index == photo_results[int(frame.timestamp)].categories[0].index


@pytest.mark.core
def test_fps_must_be_positive(phone_video) -> None:
    for fps in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="fps must be a positive number"):
            next(read_frames(phone_video, fps=fps))


@pytest.mark.core
def test_throughput_arithmetic() -> None:
    fast = VideoThroughput(frames=60, seconds=1.5, video_fps=30.0, video_seconds=2.0)
    assert fast.fps == pytest.approx(40.0) and fast.ms_per_frame == pytest.approx(25.0)
    assert fast.budget_ms == pytest.approx(1000 / 30) and fast.realtime and fast.speed == pytest.approx(4 / 3)
    slow = VideoThroughput(frames=60, seconds=2.4, video_fps=30.0, video_seconds=2.0)
    assert slow.ms_per_frame == pytest.approx(40.0) and slow.realtime is False
    assert VideoThroughput(frames=10, seconds=1.0, video_fps=None, video_seconds=1.0).realtime is None


# -- the command ---------------------------------------------------------------------------------


@pytest.mark.zoo
def test_cli_prints_timestamps_labels_and_real_time_verdict(classifier, phone_video, photo_results,
                                                            zoo_model: ZooModel, capsys) -> None:
    model = str(zoo_model(DEFAULT_MODEL, "int8"))
    assert main(["classify", str(phone_video), "--model", model, "--fps", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{phone_video}: h264 320x240, 10.00 fps, 6.0 s; classifying 2 frames a second" in out
    frame_lines = [line for line in out.splitlines() if " s  frame " in line]
    assert len(frame_lines) == 12
    for line, i in zip(frame_lines, range(12), strict=True):
        timestamp = float(line.split()[0])
        assert timestamp == i / 2
        assert photo_results[int(timestamp)].categories[0].category_name in line
    assert "12 frames classified in " in out and "frames/s" in out
    assert "real time for every frame at 10.00 fps needs < 100.0 ms a frame: " in out


@pytest.mark.zoo
def test_cli_video_json_and_every_frame(phone_video, photo_results, zoo_model: ZooModel, capsys) -> None:
    model = str(zoo_model(DEFAULT_MODEL, "int8"))
    assert main(["classify", str(phone_video), "--model", model, "--every-frame", "--json", "-k", "2"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames, summary = records[:-1], records[-1]["summary"]
    assert [r["frame"] for r in frames] == list(range(6 * RATE))
    assert all(len(r["categories"]) == 2 for r in frames)
    assert all(same_answer(r["categories"][0]["index"], photo_results[r["frame"] // RATE]) for r in frames)
    assert summary["frames"] == 6 * RATE and summary["video_fps"] == pytest.approx(RATE)
    assert summary["budget_ms"] == pytest.approx(100.0)
    assert summary["realtime"] == (summary["ms_per_frame"] < 100.0)


@pytest.mark.zoo
def test_cli_reports_a_bad_video_and_goes_on(phone_video, zoo_model: ZooModel, tmp_path: Path,
                                             capsys) -> None:
    bad = tmp_path / "broken.mov"
    bad.write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"\x00" * 100)
    model = str(zoo_model(DEFAULT_MODEL, "int8"))
    status = main(["classify", str(bad), str(phone_video), "--model", model, "--fps", "1"])
    captured = capsys.readouterr()
    assert status == 1
    assert f"litecls: cannot classify: {bad}: truncated or damaged MP4/MOV file" in captured.err
    assert len([line for line in captured.out.splitlines() if " s  frame " in line]) == 6


@pytest.mark.core
def test_cli_rejects_a_bad_rate(phone_video, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["classify", str(phone_video), "--fps", "0"])
    assert exited.value.code == 2
    assert "--fps: must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", str(phone_video), "--fps", "2", "--every-frame"])
    assert "not allowed with argument" in capsys.readouterr().err
