"""Backbone features with LiteRT: convert once, cache, extract with decoding in threads.

Frozen-backbone training extracts features with a ``.tflite`` of the
backbone's ``forward_features`` (pooled embedding), built once next to the
zoo models, and trains only the head in PyTorch (docs/decisions.md,
"Training": LiteRT is several times faster than PyTorch eager here).

The backbone file takes raw pixels (float32 NHWC, 0-255) and applies the
model's normalisation in the graph, so one file serves every backbone
regardless of its mean/std.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from litecls.errors import ImageError
from litecls.models.registry import ModelConfig, get_config
from litecls.processing.config import ProcessingConfig, resolve_processing

if TYPE_CHECKING:
    from torch import nn

#: Threads of the LiteRT interpreter: the 2 cores of the target laptop.
NUM_THREADS = 2

#: ``load(index, path)`` -> uint8 HxWx3 pixels of one image.
Loader = Callable[[int, Path], np.ndarray]


#: Custom models are fed the largest centre square, resampled bilinearly (not the backbone's ImageNet
#: crop): small training images lose nothing at their edges. Exported files record it in their metadata.
CUSTOM_RESIZE = {"resize_policy": "crop", "crop_pct": 1.0, "interpolation": "bilinear"}


def training_processing(model: str, image_size: int | None = None) -> ProcessingConfig:
    """How training, its feature extraction, calibration and the exported file prepare images.

    Args:
        model: the zoo backbone's name (its normalisation).
        image_size: the square input size (default: the backbone's own).

    Returns:
        The processing config (mean/std: the backbone's, per channel, in pixel units).

    Raises:
        UnknownModelError: ``model`` is not a zoo model.
    """
    config = get_config(model)
    size = image_size or config.input_size
    return resolve_processing(zoo=config, input_size=(size, size), **CUSTOM_RESIZE)


def create_backbone(name: str, image_size: int | None = None, pretrained: bool = True) -> nn.Module:
    """Zoo model ``name`` with ImageNet weights, built for ``image_size`` (default: its own).

    EfficientNet-Lite pads like TensorFlow ("SAME") for a fixed input size,
    so another resolution needs the network rebuilt for it; the weights
    do not depend on the size.
    """
    from litecls.models import create_model

    config = get_config(name)
    if image_size is None or image_size == config.input_size or not config.name.startswith("efficientnet"):
        return create_model(config.name, pretrained=pretrained)
    from litecls.models.efficientnet_lite import LITE_SCALING, EfficientNetLite
    from litecls.models.weights import load_state_dict

    model = EfficientNetLite(replace(LITE_SCALING[config.name], resolution=image_size))
    if pretrained:
        model.load_state_dict(load_state_dict(config.weights_package), strict=True)
    return model.eval()


def _pixel_module(backbone: nn.Module, config: ModelConfig) -> nn.Module:
    """Raw pixels NHWC (0-255) -> normalise -> NCHW -> pooled features."""
    from torch import nn

    from litecls.training.head import PixelNormalize

    class PixelFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.normalize = PixelNormalize(config.mean, config.std)

        def forward(self, x):
            return self.backbone.forward_features(self.normalize(x))

    return PixelFeatures().eval()


def pixels_to_tflite(module: nn.Module, image_size: int) -> bytes:
    """Convert ``module``, which takes raw pixels (1xHxWx3, 0-255), to float32 .tflite bytes.

    What litert-torch prints is captured (see :mod:`litecls.export.quiet`).

    Args:
        module: the network (pixels in).
        image_size: the square input size.

    Returns:
        The flatbuffer's bytes.
    """
    from litecls.export.convert import convert_module
    from litecls.export.quiet import converter_output_captured

    with converter_output_captured():
        return convert_module(module, (1, image_size, image_size, 3))


def convert_backbone(backbone: nn.Module, name: str, image_size: int) -> bytes:
    """A float32 .tflite of ``backbone.forward_features`` taking raw pixels (1xHxWx3, 0-255).

    Args:
        backbone: the (possibly fine-tuned) backbone.
        name: its zoo name (its normalisation).
        image_size: the square input size.

    Returns:
        The flatbuffer's bytes.
    """
    return pixels_to_tflite(_pixel_module(backbone.eval(), get_config(name)), image_size)


def backbone_file(name: str, image_size: int | None = None, cache: str | os.PathLike | None = None,
                  show_progress: bool = True) -> Path:
    """Path of the cached feature-extractor .tflite of zoo model ``name``, built on first use.

    Args:
        name: the zoo backbone.
        image_size: the square input size (default: the backbone's own).
        cache: the cache folder (default: the zoo cache).
        show_progress: say when it is converted.

    Returns:
        The file's path.

    Raises:
        UnknownModelError: ``name`` is not a zoo model.
        CacheDirError: the cache cannot be written.
    """
    from litecls.cache import built_once
    from litecls.progress import say

    config = get_config(name)
    size = image_size or config.input_size
    suffix = "" if size == config.input_size else f"-{size}px"
    return built_once(
        f"{config.name}-features{suffix}-float32.tflite",
        lambda: convert_backbone(create_backbone(config.name, size), config.name, size), cache,
        lambda path: say(f"converting the {config.name} backbone to LiteRT (once; cached in {path.parent})",
                         show_progress))


class FeatureExtractor:
    """Runs a backbone .tflite over image files; decoding runs in worker threads meanwhile."""

    def __init__(self, model: str | os.PathLike | bytes, preprocessing: ProcessingConfig,
                 num_threads: int = NUM_THREADS, workers: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, bytes):
            self._interpreter = Interpreter(model_content=model, num_threads=num_threads)
            self.identity = hashlib.sha1(model).hexdigest()
        else:
            path = Path(model)
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            stat = path.stat()
            self.identity = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        #: Shape of one image's output (``(D,)`` for pooled features, ``(H, W, C)`` for maps).
        self.out_shape = tuple(int(d) for d in self._output["shape"][1:])
        self.dim = self.out_shape[-1]
        self.preprocessing = preprocessing
        self.workers = workers

    def _load(self, index: int, path: Path, load: Loader | None) -> np.ndarray | str:
        try:
            return load(index, path) if load is not None else self.preprocessing.prepare(path)
        except ImageError as exc:
            return str(exc)
        except OSError as exc:
            return f"{path}: cannot read: {exc.strerror or exc}"

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Features of one uint8 HxWx3 image."""
        self._interpreter.set_tensor(self._input["index"], pixels[None].astype(np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0].copy()

    def extract(self, paths: Sequence[Path], desc: str = "features", show_progress: bool = True,
                load: Loader | None = None,
                dtype: type = np.float32) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """``(outputs N x out_shape, [(index, reason) of images that failed to decode])``.

        ``load(index, path)`` replaces the plain preprocessing (e.g. to
        augment). Failed images get zeros; callers drop them. At most
        ``4 * workers`` decoded images wait in memory at any time.
        """
        from litecls.progress import batch_bar

        features = np.zeros((len(paths), *self.out_shape), dtype)
        failed: list[tuple[int, str]] = []
        pending: deque[tuple[int, Future]] = deque()
        bar = batch_bar(len(paths), desc, show_progress, unit="img", leave=False)

        def finish(index: int, future: Future) -> None:
            result = future.result()
            if isinstance(result, str):
                failed.append((index, result))
            else:
                features[index] = self(result)
            bar.update(1)

        with bar, ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="litecls-decode") as pool:
            for index, path in enumerate(paths):
                pending.append((index, pool.submit(self._load, index, path, load)))
                if len(pending) > 4 * self.workers:
                    finish(*pending.popleft())
            while pending:
                finish(*pending.popleft())
        return features, failed


class FeatureCache:
    """Features of a list of files saved as ``.npz``, keyed by the files, the backbone and the preprocessing.

    A file that changes (size or modification time) changes the key, so a
    stale cache is never read.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def key(self, paths: Sequence[Path], extractor: FeatureExtractor) -> str:
        """The cache key of ``paths`` under ``extractor``."""
        digest = hashlib.sha1()
        digest.update(f"{extractor.identity}|{extractor.preprocessing}".encode())
        for path in paths:
            stat = path.stat()
            digest.update(f"|{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:20]

    def get_or_extract(self, paths: Sequence[Path], extractor: FeatureExtractor, desc: str = "features",
                       show_progress: bool = True) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Cached features of ``paths`` if present, else extract and save them."""
        from litecls.cache import atomic_write

        path = self.folder / f"features-{desc}-{self.key(paths, extractor)}.npz"
        if path.is_file():
            with np.load(path) as data:
                failed = [(int(i), str(r)) for i, r in zip(data["failed_index"], data["failed_reason"],
                                                           strict=True)]
                return data["features"], failed
        features, failed = extractor.extract(paths, desc, show_progress)
        self.folder.mkdir(parents=True, exist_ok=True)
        import io

        buffer = io.BytesIO()
        np.savez(buffer, features=features, failed_index=np.array([i for i, _ in failed], np.int64),
                 failed_reason=np.array([r for _, r in failed], dtype=str))
        atomic_write(path, buffer.getvalue())
        return features, failed
