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
from litecls.export.spec import ExportSpec
from litecls.models.registry import PRECISIONS, ModelConfig, get_config
from litecls.processing.config import resolve_processing

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_PRECISION = "int8"

#: Version written to each file's metadata; a cached file with another version was built by an
#: older litecls and is rebuilt (docs/decisions.md lists what each version changed).
FILE_VERSIONS = {"float32": "2", "float16": "2", "dynamic": "4", "int8": "7"}

Progress = Callable[[str], None]


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where built models live: ``override``, else ``$LITECLS_CACHE``, else XDG cache/litecls."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("LITECLS_CACHE"):
        return Path(os.environ["LITECLS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "litecls" / "models"


#: Version of the embedding files' metadata (on top of their classifier's version, which they follow).
EMBEDDING_VERSION = "1"

#: What a zoo file holds: the classifier, or its feature vector (:mod:`litecls.export.embedding`).
TASKS = ("classifier", "embedding")


def model_filename(name: str, precision: str, task: str = "classifier") -> str:
    """File name of a zoo file: ``NAME-PRECISION.tflite``, or ``NAME-embedding-PRECISION.tflite``."""
    middle = "-embedding" if task == "embedding" else ""
    return f"{get_config(name).name}{middle}-{precision}.tflite"


def file_version(precision: str, task: str = "classifier") -> str:
    """The metadata version a current zoo file of ``precision`` (and ``task``) carries."""
    if task == "embedding":
        return f"{FILE_VERSIONS[precision]}-embedding{EMBEDDING_VERSION}"
    return FILE_VERSIONS[precision]


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split ``"efficientnet_lite0"`` or ``"efficientnet_lite0:int8"`` into (name, precision)."""
    name, _, precision = ref.partition(":")
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return get_config(name).name, precision


def zoo_spec(config: ModelConfig, precision: str = "float32") -> ExportSpec:
    """The export spec of a zoo model at ``precision``: its processing, ImageNet labels and display names."""
    from litecls.models.labels import imagenet_display_names, imagenet_labels

    return ExportSpec(
        name=config.display_name, labels=list(imagenet_labels()),
        display_names={"en": list(imagenet_display_names())},
        processing=resolve_processing(zoo=config),
        description=config.description, version=FILE_VERSIONS[precision], author="litecls",
        license=config.weights_license)


#: Calibration images tile CALIBRATION_GRID x CALIBRATION_GRID photos each (see calibration_images).
CALIBRATION_GRID = 3


def calibration_images(config: ModelConfig) -> list:
    """Representative images for int8 calibration and GPTQ rounding.

    Each is a 3 x 3 mosaic of foolbox's 40 CIFAR photos (see :func:`mosaic`;
    docs/decisions.md says why mosaics), every photo in 9 mosaics at 9 places.

    Args:
        config: the zoo model (its input size).

    Returns:
        40 uint8 arrays of shape (1, size, size, 3).

    Raises:
        MissingExtraError: foolbox (the photos) is not installed.
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

    processing = resolve_processing(zoo=config)
    return [torch.from_numpy(processing.normalize(image)).permute(0, 3, 1, 2) for image in images]


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


def cached_file(name: str, precision: str, cache: str | os.PathLike | None = None,
                task: str = "classifier") -> Path:
    """Where zoo model ``name`` at ``precision`` lives in the cache (whether built or not)."""
    return cache_dir(cache) / model_filename(name, precision, task)


def built_path(name: str, precision: str, cache: str | os.PathLike | None = None,
               task: str = "classifier") -> Path | None:
    """Path of an already built, current zoo file, or ``None``."""
    from litecls.runtime.integrity import read_sidecar, sha256_hex

    path = cached_file(name, precision, cache, task)
    if not (path.is_file() and _is_current(path, file_version(precision, task))):
        return None
    expected = read_sidecar(path)
    try:
        return path if expected is None or sha256_hex(path.read_bytes()) == expected else None
    except OSError:
        return None


def _is_current(path: Path, version: str) -> bool:
    """Whether a cached file was built by this litecls's export (its metadata ``version``)."""
    from litecls.metadata import read_metadata

    try:
        return read_metadata(path).version == version
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
    if _reusable(target, file_version(precision), force, say):
        return target

    from litecls.extras import require_extra

    require_extra("zoo", f"building {config.name} at {precision}")
    from litecls.export import export_tflite
    from litecls.metadata import strip_metadata

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
        base = strip_metadata(base_path.read_bytes())
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
    return _store(target, data, say, started)


def _reusable(target: Path, version: str, force: bool, say: Progress) -> bool:
    """Whether cached ``target`` can be served as it is (current, and matching its sidecar)."""
    if not target.is_file() or force:
        return False
    if not _is_current(target, version):
        say(f"{target.name} was built by an older litecls (or is damaged); rebuilding")
        return False
    return _is_intact(target, say)


def _store(target: Path, data: bytes, say: Progress, started: float) -> Path:
    """Write a built file atomically with its SHA-256 sidecar; say so."""
    from litecls.runtime.integrity import write_sidecar

    atomic_write(target, data)
    write_sidecar(target, data)
    say(f"wrote {target} ({len(data) / 1e6:.1f} MB, {time.perf_counter() - started:.0f} s)")
    return target


def build_embedding(name: str, precision: str = DEFAULT_PRECISION, cache: str | os.PathLike | None = None,
                    force: bool = False, progress: Progress | None = None) -> Path:
    """Build (or reuse) the image embedder of zoo model ``name`` at ``precision``; return the .tflite path.

    The embedder is the classifier file cut before its classifier layer
    (:func:`litecls.export.embedding.embedder_from_classifier`): one float32
    ``[1, 1280]`` output, the globally pooled features; the same input
    convention as the classifier. The classifier is built first if missing.

    Args:
        name: a zoo model name.
        precision: one of :data:`litecls.models.registry.PRECISIONS`.
        cache: the cache folder (default :func:`cache_dir`).
        force: rebuild the embedder even when cached (the classifier is reused).
        progress: receives one line per step.

    Returns:
        The path of ``NAME-embedding-PRECISION.tflite``.

    Raises:
        ExportError: an unknown precision, or a classifier that cannot be cut.
        CacheDirError: the cache folder is not writable.
    """
    say = progress or (lambda _msg: None)
    config = get_config(name)
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    target = _writable_dir(cache_dir(cache)) / model_filename(config.name, precision, "embedding")
    version = file_version(precision, "embedding")
    if _reusable(target, version, force, say):
        return target
    classifier = build(config.name, precision, cache, progress=progress)
    from litecls.export.embedding import embedder_from_classifier

    started = time.perf_counter()
    say(f"{config.name}: cutting the {precision} classifier before its classifier layer")
    return _store(target, embedder_from_classifier(classifier.read_bytes(), version), say, started)
