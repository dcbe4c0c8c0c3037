"""The model zoo: build pretrained models into cached, deployable .tflite files.

``build("efficientnet_lite0", "int8")`` converts once and then returns the
cached path. The float32 file is the base of the other precisions, so it is
converted once per model. Files are written to a temporary name and renamed,
so an interrupted build never leaves a half-written model behind, and each
file gets a ``NAME.tflite.sha256`` sidecar: a cached file that no longer
matches it is rebuilt, one without it (built by an older litecls) is adopted
once it loads and passes a trial run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from litecls.errors import CacheDirError, ExportError, ModelFileError
from litecls.export.quantize import PRECISIONS
from litecls.export.spec import ExportSpec
from litecls.models.registry import ModelConfig, get_config

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_PRECISION = "int8"

#: Version written to each file's metadata; a cached file with another version was built by an
#: older litecls and is rebuilt. int8 "2": the classifier layer's logits are float (not clipped);
#: "3": residual streams equalized before calibration where the config asks for it; "4": GPTQ
#: weight rounding; "5": calibrated on mosaics of the calibration photos, MobileNetV2 no longer
#: equalized; "6": every bias fits int32 (litecls.export.quantize.representable_biases).
#: dynamic "2": GPTQ weight rounding; "3": its Hessians from those mosaics.
FILE_VERSIONS = {"float32": "1", "float16": "1", "dynamic": "3", "int8": "6"}

Progress = Callable[[str], None]


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where built models live: ``override``, else ``$LITECLS_CACHE``, else XDG cache/litecls."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("LITECLS_CACHE"):
        return Path(os.environ["LITECLS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "litecls" / "models"


def model_filename(name: str, precision: str) -> str:
    """File name of a zoo model at a precision: ``NAME-PRECISION.tflite``."""
    return f"{get_config(name).name}-{precision}.tflite"


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split ``"efficientnet_lite0"`` or ``"efficientnet_lite0:int8"`` into (name, precision)."""
    name, _, precision = ref.partition(":")
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return get_config(name).name, precision


def zoo_spec(config: ModelConfig, precision: str = "float32") -> ExportSpec:
    """The export spec of a zoo model at ``precision``: its config, ImageNet labels and display names."""
    from litecls.models.labels import imagenet_display_names, imagenet_labels

    return ExportSpec(
        name=config.display_name, labels=list(imagenet_labels()),
        display_names={"en": list(imagenet_display_names())},
        input_size=(config.input_size, config.input_size), mean=config.mean, std=config.std,
        description=config.description, version=FILE_VERSIONS[precision], author="litecls",
        license=config.weights_license, crop_pct=config.crop_pct)


#: Calibration images tile CALIBRATION_GRID x CALIBRATION_GRID photos each (see calibration_images).
CALIBRATION_GRID = 3


def calibration_images(config: ModelConfig) -> list:
    """Representative images for int8 calibration and GPTQ rounding (uint8, 1xHxWx3).

    Each is a mosaic of 3 x 3 of foolbox's 40 CIFAR photos (32 px, upsampled
    about 2.5x), every photo in 9 mosaics at 9 different places, rather than
    one thumbnail upsampled 7x to fill the input: small sharp objects, as in
    real frames, instead of one blurred one. Chosen by measurement (int8 vs
    float32 top-1 agreement on 696 inputs, thumbnails -> mosaics): Lite0
    95.8 -> 95.5 %, Lite1 94.7 -> 94.7 %, Lite2 96.1 -> 96.7 %, MobileNetV2
    90.1 -> 93.1 % (and no longer equalized, see its config); the error of
    the top class's probability fell on all four (by 7 to 29 %). The
    activation ranges matter most: taken alone they moved MobileNetV2 from 627
    to 636 inputs. It is their balance across tensors that helps, not their
    width: real photos exceed more of the mosaic ranges than of the thumbnail
    ranges, yet widening the thumbnail ranges 1.5x lost 23 inputs and
    narrowing them to 0.8x lost 78. Adding the thumbnails to the mosaics lost
    16 of MobileNetV2's 644 (measured with equalization).
    """
    from PIL import Image

    from litecls.samples import calibration_photos

    photos = []
    for path in calibration_photos():
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    return [mosaic(photos, config.input_size, CALIBRATION_GRID, first=k * CALIBRATION_GRID ** 2)[None]
            for k in range(len(photos))]


def mosaic(photos: list, side: int, grid: int, first: int = 0) -> np.ndarray:
    """A ``side`` x ``side`` uint8 RGB image tiling ``grid`` x ``grid`` of ``photos`` (PIL images).

    Tiles take photos ``first``, ``first + 1``, ... (cycling through the list),
    row by row; tile edges are spread evenly, so no border is left over.
    """
    from PIL import Image

    canvas = Image.new("RGB", (side, side))
    edges = [round(i * side / grid) for i in range(grid + 1)]
    for j in range(grid * grid):
        row, col = divmod(j, grid)
        box = (edges[col], edges[row], edges[col + 1], edges[row + 1])
        tile = photos[(first + j) % len(photos)].resize((box[2] - box[0], box[3] - box[1]),
                                                        Image.BICUBIC)
        canvas.paste(tile, box[:2])
    return np.asarray(canvas, dtype=np.uint8)


def torch_inputs(config: ModelConfig, images: list) -> list:
    """NCHW float tensors of uint8 NHWC ``images``, normalised as ``config`` says (PyTorch's input)."""
    import torch

    mean, std = np.asarray(config.mean, np.float32), np.asarray(config.std, np.float32)
    return [torch.from_numpy((np.asarray(image, np.float32) - mean) / std).permute(0, 3, 1, 2)
            for image in images]


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheDirError(f"cannot create model cache directory {folder}: {exc.strerror}; "
                            "set --cache-dir or LITECLS_CACHE to a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CacheDirError(f"model cache directory {folder} is not writable; "
                            "set --cache-dir or LITECLS_CACHE to a writable folder")
    return folder


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (never half-written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_file(name: str, precision: str, cache: str | os.PathLike | None = None) -> Path:
    """Where zoo model ``name`` at ``precision`` lives in the cache (whether built or not)."""
    return cache_dir(cache) / model_filename(name, precision)


def built_path(name: str, precision: str, cache: str | os.PathLike | None = None) -> Path | None:
    """Path of an already built, current zoo file, or ``None``."""
    from litecls.runtime.integrity import read_sidecar, sha256_hex

    path = cached_file(name, precision, cache)
    if not (path.is_file() and _is_current(path, precision)):
        return None
    expected = read_sidecar(path)
    try:
        return path if expected is None or sha256_hex(path.read_bytes()) == expected else None
    except OSError:
        return None


def _is_current(path: Path, precision: str) -> bool:
    """Whether a cached file was built by this litecls's export (its metadata version)."""
    from litecls.export.metadata import read_metadata

    try:
        return read_metadata(path).version == FILE_VERSIONS[precision]
    except Exception:  # unreadable, damaged or foreign file: rebuild rather than serve it
        return False


def _is_intact(path: Path, say: Progress) -> bool:
    """Whether a current cached file matches its SHA-256 sidecar (says why not).

    A file without a sidecar (built before litecls wrote them) is checked by
    loading it with a trial run instead; if it passes, its sidecar is written.
    """
    from litecls.runtime.integrity import verify_sidecar, write_sidecar
    from litecls.runtime.interpreter import interpreter_from_bytes

    try:
        data = path.read_bytes()
        if verify_sidecar(path, data):
            return True
        interpreter_from_bytes(data, str(path))
    except ModelFileError as exc:
        say(f"{path.name}: {str(exc).removeprefix(f'{path}: ')}; rebuilding")
        return False
    except OSError as exc:
        say(f"{path.name}: cannot read it ({exc.strerror or exc}); rebuilding")
        return False
    with contextlib.suppress(OSError):  # a read-only cache: serve the file, check it again next time
        write_sidecar(path, data)
    return True


def build(name: str, precision: str = DEFAULT_PRECISION, cache: str | os.PathLike | None = None,
          force: bool = False, progress: Progress | None = None) -> Path:
    """Build (or reuse) zoo model ``name`` at ``precision``; return the .tflite path.

    Also writes ``labels.txt`` beside it. ``progress`` receives one line per step.
    """
    say = progress or (lambda _msg: None)
    config = get_config(name)
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    folder = _writable_dir(cache_dir(cache))
    target = folder / model_filename(config.name, precision)
    if target.is_file() and not force:
        if not _is_current(target, precision):
            say(f"{config.name}: {target.name} was built by an older litecls (or is damaged); "
                f"rebuilding")
        elif _is_intact(target, say):
            return target

    from litecls.export import export_tflite, flatbuffer

    spec = zoo_spec(config, precision)
    labels = folder / "labels.txt"
    if not labels.is_file():
        atomic_write(labels, ("\n".join(spec.labels) + "\n").encode())
    started = time.perf_counter()
    # Decoded at most once: equalization and quantization both read them.
    calibration = functools.cache(lambda: calibration_images(config))
    # An equalized int8 file starts from its own converted copy; the rest share the float32 file.
    equalize = precision == "int8" and config.int8_equalization > 0
    base = None
    if precision != "float32" and not equalize:
        base_path = build(config.name, "float32", cache, force=False, progress=progress)
        base = flatbuffer.strip_metadata(base_path.read_bytes())
    model = None
    if base is None:
        from litecls.models import create_model

        say(f"{config.name}: loading ImageNet weights from {config.weights_package}")
        model = create_model(config.name)
    if equalize:
        from litecls.export.equalize import equalize_residual_streams

        say(f"{config.name}: equalizing residual streams (strength {config.int8_equalization})")
        equalize_residual_streams(model, torch_inputs(config, calibration()), config.int8_equalization)
    if base is not None:
        step = "quantizing"
    else:
        step = "converting" if precision == "float32" else "converting and quantizing"
    how = {"int8": " (GPTQ weight rounding, then calibration)",
           "dynamic": " (GPTQ weight rounding)"}.get(precision, "")
    say(f"{config.name}: {step} to {precision}{how}")
    data = export_tflite(model, spec, precision, calibration=calibration, float_model=base)
    from litecls.runtime.integrity import write_sidecar

    atomic_write(target, data)
    write_sidecar(target, data)
    say(f"{config.name}: wrote {target} ({len(data) / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.0f} s)")
    return target
