"""``litecls classify``: classify image files, folders, videos or the sample photos."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from dataclasses import dataclass

from litecls.imagefiles import IMAGE_SUFFIXES, images_under, is_image_name
from litecls.models.zoo import DEFAULT_MODEL
from litecls.processing.video import VIDEO_SUFFIXES, VideoError, is_video

#: Up to this many images get a full table each; more get one line each and a progress bar.
TABLE_LIMIT = 12
#: Categories shown on each frame's line of a video (more with --json).
FRAME_LABELS = 3


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``classify`` command."""
    p = commands.add_parser("classify", help="classify images or videos with a .tflite classifier")
    p.add_argument("inputs", nargs="*", metavar="IMAGE_VIDEO_OR_DIR",
                   help="image files, folders (searched recursively for images) and video files "
                        f"({' '.join(sorted(VIDEO_SUFFIXES))})")
    p.add_argument("--samples", action="store_true",
                   help="also classify the sample photos (scikit-image and matplotlib classics)")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL,
                   help="a .tflite file or a zoo model NAME[:PRECISION] (default: efficientnet_lite0, int8)")
    p.add_argument("--top-k", "-k", type=int, default=5, help="categories per image (default 5)")
    p.add_argument("--threshold", type=float, default=0.0, help="hide categories scoring below this")
    p.add_argument("--labels", help="labels file (one per line) for models without metadata")
    p.add_argument("--mean", type=float, nargs="+", help="input normalisation mean (models without metadata)")
    p.add_argument("--std", type=float, nargs="+", help="input normalisation std (models without metadata)")
    lists = p.add_mutually_exclusive_group()
    lists.add_argument("--allow", nargs="+", metavar="LABEL", help="only report these categories")
    lists.add_argument("--deny", nargs="+", metavar="LABEL", help="never report these categories")
    p.add_argument("--resize-policy", choices=("crop", "squash"),
                   help="crop: keep the aspect ratio and cut the centre; squash: stretch to the input "
                        "(default: the model's metadata, else crop)")
    p.add_argument("--crop-pct", type=float, help="fraction of the short side kept by the crop (0-1]")
    p.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest", "lanczos"),
                   help="resampling filter (default: the model's metadata, else bilinear)")
    p.add_argument("--locale", help="display-name locale of the model's label files (default: en)")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)")
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=_positive_float, default=1.0,
                      help="video frames to classify per second of video (default 1)")
    rate.add_argument("--every-frame", action="store_true", help="classify every frame of a video")
    p.add_argument("--json", action="store_true", help="one JSON object per image or frame (JSON Lines)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.add_argument("--follow-links", action="store_true",
                   help="walk links to folders (default: a link to a folder is reported, not walked)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show Pillow's warnings and LiteRT's log lines")
    p.set_defaults(func=cmd_classify)


@dataclass
class Input:
    """One thing to classify: ``name`` is what rows show (the string as given, or a found file)."""

    name: str
    error: str | None = None
    video: bool = False


def expand_inputs(inputs: list[str], follow_links: bool = False) -> list[Input]:
    """The rows the command's inputs make, in order: each string as given, folders expanded.

    Files are kept as given, character for character (missing or odd ones are
    reported when read, not skipped); a name ending in a video suffix is a
    video. Folders are walked recursively for image files in sorted order
    (hidden files and folders, such as macOS's ``._*`` resource forks, are
    skipped; videos in folders are left alone: they take far longer than
    photos, name them to classify them). A folder gives an error row when it
    holds no images, is named like an image or video (``x.jpg/``), or is a
    link to a folder and ``follow_links`` is off.
    """
    items: list[Input] = []
    for item in inputs:
        if os.path.isdir(item):
            if os.path.islink(item.rstrip("/" + os.sep) or item) and not follow_links:
                items.append(Input(item, f"{item}: is a link to a folder; not followed "
                                         f"(pass --follow-links to walk it)"))
            elif is_image_name(item.rstrip("/" + os.sep)) or is_video(item.rstrip("/" + os.sep)):
                items.append(Input(item, f"{item}: is a directory, not an image or video file"))
            else:
                found = images_under(item, follow_links=follow_links)
                if not found:
                    items.append(Input(item, f"{item}: folder holds no image files "
                                             f"({', '.join(sorted(IMAGE_SUFFIXES))})"))
                items += [Input(os.path.join(item, os.path.relpath(path, item))) for path in found]
        elif is_video(item):
            items.append(Input(item, video=True))
        else:
            items.append(Input(item))
    return items


def printable(text: str) -> str:
    """``text`` with control, format and undecodable characters escaped, for a terminal line.

    A newline in a file name would split its output line and an escape
    sequence would drive the terminal; bytes that were not UTF-8
    (surrogate-escaped by Python) show as ``\\xNN``.
    """
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _bar(score: float, width: int = 24) -> str:
    filled = score * width
    full = int(filled)
    return "█" * full + ("▌" if filled - full >= 0.5 else "")


def _name(category) -> str:
    """The label to show: the category name, else the display name, else the class index."""
    return category.category_name or category.display_name or f"class {category.index}"


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify every input; exit 1 if any input could not be classified, 2 for a usage error."""
    from litecls.samples import demo_photos
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    items = expand_inputs(args.inputs, follow_links=args.follow_links)
    if args.samples:
        items += [Input(str(path)) for path in demo_photos()]
    images = [item for item in items if not item.video]
    videos = [item for item in items if item.video]
    if not items:
        print("litecls: nothing to classify: give image files, folders or videos, or --samples",
              file=sys.stderr)
        return 2
    if not any(item.error is None for item in items):  # nothing to load a model for
        for item in items:
            _report_error(item.name, item.error or "", args)
        return 1
    from litecls.cli.common import resolve_cli_model

    model = resolve_cli_model(args.model, args.cache_dir)
    try:
        options = ImageClassifierOptions(
            model_path=model, max_results=args.top_k, score_threshold=args.threshold,
            category_allowlist=args.allow, category_denylist=args.deny, num_threads=args.threads,
            labels=args.labels, mean=tuple(args.mean) if args.mean else None,
            std=tuple(args.std) if args.std else None, cache_dir=args.cache_dir,
            resize_policy=args.resize_policy, crop_pct=args.crop_pct, interpolation=args.interpolation,
            display_names_locale=args.locale)
        classifier = ImageClassifier.create_from_options(options)
    except ValueError as exc:  # litecls's own errors (also ValueErrors) keep their exit status
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    with classifier:
        if images:
            failures += _classify_images(classifier, images, model, args)
        for video in videos:
            failures += _classify_video(classifier, video.name, args)
    return 1 if failures else 0


def _report_error(name: str, message: str, args: argparse.Namespace) -> None:
    """An error row: a JSON object on stdout, or a line on stderr."""
    if args.json:
        print(json.dumps({"file": name, "error": message}), flush=True)
    else:
        print(f"litecls: cannot classify: {printable(message)}", file=sys.stderr, flush=True)


def _classify_images(classifier, items: list[Input], model: str, args: argparse.Namespace) -> int:
    """Print one row per item (a result or an error), in order; return how many failed."""
    from litecls.progress import ProgressBar

    failures = 0
    started = time.perf_counter()
    table = len(items) <= TABLE_LIMIT and not args.json
    if table:
        print(f"model: {model}")
    readable = [item.name for item in items if item.error is None]
    results = iter(classifier.classify_many(readable, workers=args.workers))
    bar = ProgressBar() if sys.stderr.isatty() else None  # lines on stdout, the count on a terminal
    for done, item in enumerate(items, 1):
        if item.error is not None:
            failures += 1
            _report_error(item.name, item.error, args)
            continue
        _path, result = next(results)
        if isinstance(result, Exception):
            failures += 1
            _report_error(item.name, str(result), args)
            continue
        if args.json:
            from litecls.tasks.classification_result import result_row

            print(json.dumps(result_row(item.name, result)), flush=True)
        elif table:
            flag = "  (ambiguous: no label is clearly ahead)" if result.ambiguous else ""
            print(f"\n{printable(item.name)}{flag}")
            for c in result.categories:
                if c.score <= 0.0:  # a quantized score of exactly 0 says nothing
                    continue
                print(f"  {c.score:7.2%}  {_bar(c.score):<24}  {_name(c)}")
        else:
            top = result.top
            name = f"{_name(top)} {top.score:.2%}" if top else "-"
            print(f"{printable(item.name)}\t{name}{'  (ambiguous)' if result.ambiguous else ''}")
            if bar is not None:
                bar.update(done, len(items))
    elapsed = time.perf_counter() - started
    if not args.json:
        good = len(items) - failures
        print(f"\n{good} of {len(items)} images classified in {elapsed:.2f} s"
              f"{f'; {failures} could not be read' if failures else ''}", file=sys.stderr)
    return failures


def _classify_video(classifier, path: str, args: argparse.Namespace) -> int:
    """Print the sampled frames' top labels and the throughput; return 1 if the video failed."""
    from litecls.processing.video import probe_video
    from litecls.tasks.video import VideoThroughput, classify_video

    fps = None if args.every_frame else args.fps
    try:
        info = probe_video(path)
    except VideoError as exc:
        _report_video_error(path, exc, args)
        return 1
    if not args.json:
        rate = "every frame" if fps is None else f"{fps:g} frame{'s' if fps != 1 else ''} a second"
        print(f"\n{printable(str(path))}: {info.codec} {info.width}x{info.height}, "
              f"{f'{info.fps:.2f} fps' if info.fps else 'unknown frame rate'}, "
              f"{f'{info.duration:.1f} s' if info.duration is not None else 'unknown length'}; "
              f"classifying {rate}")
    frames, last_time, failed = 0, 0.0, 0
    started = time.perf_counter()
    try:
        for frame in classify_video(classifier, path, fps, workers=1):
            frames += 1
            last_time = frame.timestamp
            _print_frame(path, frame, args)
    except VideoError as exc:
        _report_video_error(path, exc, args)
        failed = 1
    elapsed = time.perf_counter() - started
    # The span of video covered: all of it, or up to the end of the last frame before the damage.
    if info.duration and not failed:
        covered = info.duration
    else:
        covered = last_time + (1 / info.fps if info.fps else 0.0)
    _print_throughput(path, VideoThroughput(frames, elapsed, info.fps, covered), args)
    return failed


def _report_video_error(path: str, exc: VideoError, args: argparse.Namespace) -> None:
    _report_error(str(path), str(exc), args)


def _print_frame(path: str, frame, args: argparse.Namespace) -> None:
    result = frame.result
    if args.json:
        from litecls.tasks.classification_result import result_row

        row = result_row(str(path), result)
        print(json.dumps({"file": row.pop("file"), "frame": frame.index,
                          "timestamp": round(frame.timestamp, 6), **row}), flush=True)
        return
    shown = [c for c in result.categories[:FRAME_LABELS] if c.score > 0.0]
    labels = ", ".join(f"{_name(c)} {c.score:.1%}" for c in shown) or "-"
    print(f"  {frame.timestamp:8.2f} s  frame {frame.index:<6d} {labels}"
          f"{'  (ambiguous)' if result.ambiguous else ''}", flush=True)


def _print_throughput(path: str, stats, args: argparse.Namespace) -> None:
    """Frames per second achieved and whether every frame of the video could be kept up with."""
    if args.json:
        print(json.dumps({"file": str(path), "summary": {
            "frames": stats.frames, "seconds": round(stats.seconds, 4),
            "frames_per_second": round(stats.fps, 2) if stats.frames else 0.0,
            "ms_per_frame": round(stats.ms_per_frame, 2) if stats.frames else None,
            "video_fps": stats.video_fps, "budget_ms": stats.budget_ms,
            "realtime": stats.realtime, "speed": round(stats.speed, 2)}}), flush=True)
        return
    if not stats.frames:
        print("  no frame classified")
        return
    print(f"{stats.frames} frames classified in {stats.seconds:.2f} s: {stats.fps:.1f} frames/s, "
          f"{stats.ms_per_frame:.1f} ms a frame (decode + classify); "
          f"{stats.speed:.1f}x playback speed")
    if stats.budget_ms is None:
        print("real time: unknown (the video does not state its frame rate)")
        return
    verdict = "yes" if stats.realtime else "no"
    # Sampled: each classified frame's time includes decoding the skipped ones, so "yes" is
    # certain and "no" may be too strict; --every-frame measures the per-frame cost itself.
    note = "" if args.every_frame or stats.realtime else " (skipped frames' decoding included; " \
        "--every-frame measures it directly)"
    print(f"real time for every frame at {stats.video_fps:.2f} fps needs < {stats.budget_ms:.1f} ms "
          f"a frame: {verdict} ({stats.ms_per_frame:.1f} ms){note}")
