"""Image batches for fine-tuning: decode once, augment every epoch in worker threads.

Augmentation (random resized crop, horizontal flip, colour jitter) is done
with PIL and numpy: torchvision is not a dependency, and PIL's resize with a
``box`` crops and scales in one resampling step. Each image's random numbers
come from ``(seed, epoch, index)``, so batches do not depend on which thread
ran first, and a resumed run sees the same images as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litecls.processing.config import ProcessingConfig, normalize
from litecls.training.trainer import shuffled_batches


@dataclass(frozen=True)
class Augmentation:
    """Random resized crop (area ``scale``, aspect ``ratio``), flip, brightness/contrast/saturation jitter."""

    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def crop_box(self, width: int, height: int,
                 rng: np.random.Generator) -> tuple[float, float, float, float]:
        """A random (left, top, right, bottom) box, drawn as torchvision's RandomResizedCrop does."""
        area = width * height
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            w, h = math.sqrt(target * aspect), math.sqrt(target / aspect)
            if w <= width and h <= height:
                left, top = rng.uniform(0, width - w), rng.uniform(0, height - h)
                return left, top, left + w, top + h
        side = min(width, height)  # fall back to the centre square
        return (width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2

    def __call__(self, image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
        """An augmented ``size`` x ``size`` uint8 RGB array of ``image``."""
        box = self.crop_box(image.width, image.height, rng)
        pixels = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=box), np.float32)
        if self.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
        if self.saturation:
            s = rng.uniform(1 - self.saturation, 1 + self.saturation)
            pixels = grey[..., None] + s * (pixels - grey[..., None])
        if self.contrast:
            c = rng.uniform(1 - self.contrast, 1 + self.contrast)
            mean = float(grey.mean())
            pixels = mean + c * (pixels - mean)
        if self.brightness:
            pixels = pixels * rng.uniform(1 - self.brightness, 1 + self.brightness)
        return np.clip(pixels, 0, 255).astype(np.uint8)


def base_image(path: Path, size: int) -> Image.Image:
    """Decode once and shrink so the short side is at most ``size`` (never enlarged: crops are
    resized from the original pixels)."""
    from litecls.processing.image import load_image

    image = load_image(path, 3, draft_size=(2 * size, 2 * size))
    scale = size / min(image.size)
    if scale < 1:
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                             Image.Resampling.BILINEAR, reducing_gap=3.0)
    return image


def to_tensor(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 NxHxWx3 -> normalised float NCHW (channels-last memory, faster for these convs on CPU)."""
    return torch.from_numpy(normalize(pixels, mean, std)).permute(0, 3, 1, 2)


class AugmentedImages:
    """Shuffled, augmented, normalised batches of a dataset for each epoch.

    Base images (decoded, shrunk to the training size) are kept in memory,
    so each epoch only crops, resizes and jitters. The next batch is
    prepared by the worker threads while the model trains on this one.
    """

    def __init__(self, paths: Sequence[Path], labels: np.ndarray, processing: ProcessingConfig,
                 batch_size: int, seed: int, augmentation: Augmentation | None, workers: int = 2) -> None:
        self.processing = processing
        size = processing.input_size[0]
        self.size, self.mean, self.std = size, list(processing.mean), list(processing.std)
        self.batch_size, self.seed, self.workers = batch_size, seed, workers
        self.augmentation = augmentation
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self.images = list(pool.map(lambda p: base_image(p, size), paths))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def _one(self, index: int, epoch: int) -> np.ndarray:
        image = self.images[index]
        if self.augmentation is None:
            return self.processing.resize(image)
        rng = np.random.default_rng([self.seed, epoch, index])
        return self.augmentation(image, self.size, rng)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches, in a reproducible order."""
        chunks = shuffled_batches(len(self.images), self.batch_size, self.seed, "fine-tune", epoch)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="litecls-augment") as pool:
            def submit(chunk: torch.Tensor):
                return [pool.submit(self._one, int(i), epoch) for i in chunk]

            pending = submit(chunks[0]) if chunks else []
            for k, chunk in enumerate(chunks):
                ready = np.stack([f.result() for f in pending])
                pending = submit(chunks[k + 1]) if k + 1 < len(chunks) else []
                yield to_tensor(ready, self.mean, self.std).contiguous(memory_format=torch.channels_last), \
                    self.labels[chunk]
