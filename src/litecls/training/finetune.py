"""Fine-tuning: train backbone stages together with the head, at a lower learning rate.

Two ways, chosen by how much of the backbone trains:

* **the top** (``fine_tune_layers="top"`` or a number of stages): the frozen
  bottom is cut off, converted to LiteRT and run *once* over
  ``augment_views`` versions of every training image (the first as is, the
  others augmented); its feature maps are kept in memory (float16) and each
  epoch trains the top stages and head on one version. PyTorch then never
  runs the bottom, where the large early feature maps make eager mode
  slowest: an epoch of 5,000 images costs about a minute at 224 px instead
  of five.
* **all of it** (``"all"``): PyTorch on images augmented afresh every epoch
  (random resized crop, flip, colour jitter).

BatchNorm keeps its ImageNet statistics in both (see :func:`set_train_mode`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from litecls.models.registry import get_config
from litecls.training.data import Dataset
from litecls.training.features import FeatureExtractor, create_backbone
from litecls.training.head import (
    ClassifierHead,
    CustomClassifier,
    backbone_stages,
    freeze_backbone,
    pool,
    run_stages,
    set_train_mode,
    trainable_stages,
)
from litecls.training.trainer import Checkpoint, EpochRecord, Stage, epoch_generator, run_stage

if TYPE_CHECKING:
    from litecls.training.api import TrainOptions
    from litecls.training.model import TrainedModel

#: Memory the cached feature maps of the "top" path may take; beyond it fewer versions are
#: kept, and beyond one version the images path is used.
MAP_MEMORY_LIMIT = 2 * 1024**3


class _Bottom(nn.Module):
    """Raw pixels NHWC (0-255) -> normalise -> the first ``split`` stages -> NHWC maps."""

    def __init__(self, backbone: nn.Module, mean: Iterable[float], std: Iterable[float], split: int) -> None:
        super().__init__()
        self.backbone, self.split = backbone, split
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("inv_std", 1.0 / torch.tensor(list(std), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.mean) * self.inv_std).permute(0, 3, 1, 2)
        return run_stages(self.backbone, x, 0, self.split).permute(0, 2, 3, 1)


class _Top(nn.Module):
    """Feature maps after the frozen bottom (NCHW) -> the trainable stages -> pool -> head."""

    def __init__(self, backbone: nn.Module, head: ClassifierHead, split: int) -> None:
        super().__init__()
        self.backbone, self.head, self.split = backbone, head, split

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(pool(run_stages(self.backbone, maps, self.split)))


def bottom_file(name: str, image_size: int, split: int, cache: str | Path | None) -> Path:
    """The cached LiteRT file of the first ``split`` stages of zoo model ``name`` (built on first use)."""
    from litecls.models.zoo import _writable_dir, atomic_write, cache_dir

    config = get_config(name)
    folder = _writable_dir(cache_dir(cache))
    path = folder / f"{config.name}-stages0-{split}-{image_size}px-float32.tflite"
    if not path.is_file():
        import litert_torch  # slow to import: only when converting

        from litecls.export.quiet import converter_output_captured

        module = _Bottom(create_backbone(config.name, image_size), config.mean, config.std, split).eval()
        with torch.no_grad(), converter_output_captured():
            edge = litert_torch.convert(module, (torch.zeros(1, image_size, image_size, 3),))
        atomic_write(path, bytes(edge.model_content()))
    return path


def _say(message: str, show: bool) -> None:
    if show:
        print(message, file=sys.stderr, flush=True)


def fine_tune(trained: TrainedModel, opts: TrainOptions, train_data: Dataset, val_data: Dataset | None,
              checkpoint: Checkpoint, fingerprint: dict, history: list[EpochRecord],
              weights: torch.Tensor | None, state: dict | None,
              on_epoch_end: Iterable[Callable[[EpochRecord], None]]) -> float:
    """Fine-tune ``trained``'s backbone and head; returns the wall time.

    ``trained.head`` holds the head trained on frozen features; afterwards
    ``trained.backbone`` is the fine-tuned backbone.
    """
    started = time.perf_counter()
    backbone = create_backbone(opts.model, opts.image_size)
    trainable = freeze_backbone(backbone, opts.fine_tune_layers)
    total = len(backbone_stages(backbone))
    split = total - trainable_stages(backbone, opts.fine_tune_layers)
    views = opts.augment_views if opts.augment else 1
    network = None
    if split > 0:
        network, batches, validate, steps = _cached_maps(trained, opts, backbone, split, views, train_data,
                                                         val_data, weights)
    if network is None:
        network, batches, validate, steps = _augmented_images(trained, opts, backbone, train_data, val_data,
                                                              weights)
    _say(f"fine-tuning the last {total - split} of {total} backbone stages and the head at "
         f"{opts.image_size} px", opts.show_progress)
    groups = [{"params": trainable, "lr": opts.fine_tune_lr},
              {"params": list(trained.head.parameters()), "lr": 10 * opts.fine_tune_lr}]
    stage = Stage("fine-tune", opts.epochs, groups, steps_per_epoch=steps, weight_decay=opts.weight_decay,
                  label_smoothing=opts.label_smoothing, class_weights=weights,
                  warmup_epochs=opts.warmup_epochs, patience=opts.patience, seed=opts.seed)
    trained.stages["fine-tune"] = run_stage(
        network, stage, batches, validate, lambda on: set_train_mode(network, on), checkpoint, fingerprint,
        history, resume=state, show_progress=opts.show_progress, on_epoch_end=on_epoch_end)
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    trained.backbone = backbone.to(memory_format=torch.contiguous_format).eval()
    trained.reset_extractor()  # it ran the frozen backbone
    return time.perf_counter() - started


def _validator(network: nn.Module, inputs: Callable[[int, int], torch.Tensor], count: int,
               labels: torch.Tensor, weights: torch.Tensor | None) -> Callable[[], tuple[float, float]]:
    def validate() -> tuple[float, float]:
        with torch.no_grad():
            logits = torch.cat([network(inputs(i, min(i + 64, count))) for i in range(0, count, 64)])
        loss = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
        return float(loss), float((logits.argmax(1) == labels).float().mean())

    return validate


def _cached_maps(trained: TrainedModel, opts: TrainOptions, backbone: nn.Module, split: int, views: int,
                 train_data: Dataset, val_data: Dataset | None, weights: torch.Tensor | None):
    """The "top" path: bottom maps computed once in LiteRT; ``(network, batches, validate, steps)``.

    Returns ``network=None`` when even one version of the maps would not fit in memory.
    """
    from litecls.training.augment import Augmentation, base_image

    show = opts.show_progress
    path = bottom_file(opts.model, opts.image_size, split, trained.cache)
    extractor = FeatureExtractor(path, trained.preprocessing)
    per_image = int(np.prod(extractor.out_shape)) * 2  # float16
    fits = int(MAP_MEMORY_LIMIT // max(1, per_image * len(train_data)))
    if fits < 1:
        _say("feature maps would not fit in memory: fine-tuning on images instead", show)
        return None, None, None, 0
    views = min(views, fits)
    augmentation, size = Augmentation(), opts.image_size

    def augmented(view: int) -> Callable[[int, Path], np.ndarray]:
        def load(index: int, image_path: Path) -> np.ndarray:
            rng = np.random.default_rng([opts.seed, view, index])
            return augmentation(base_image(image_path, size), size, rng)

        return load

    maps, failed = [], set()
    for view in range(views):
        _say(f"frozen stages 1-{split} in LiteRT, training images, version {view + 1} of {views}"
             + (" (augmented)" if view else ""), show)
        out, bad = extractor.extract(train_data.paths, desc=f"maps {view + 1}/{views}",
                                     show_progress=show, load=augmented(view) if view else None,
                                     dtype=np.float16)
        maps.append(torch.from_numpy(out))
        failed.update(i for i, _ in bad)
    labels = torch.from_numpy(train_data.labels)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[sorted(failed)] = False
    if not keep.all():
        maps, labels = [m[keep] for m in maps], labels[keep]
    network = _Top(backbone, trained.head, split)
    batch_size = opts.batch_size

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        source = maps[(epoch - 1) % len(maps)]
        order = torch.randperm(len(labels), generator=epoch_generator(opts.seed, "fine-tune", epoch))
        for i in range(0, len(order), batch_size):
            index = order[i:i + batch_size]
            # NHWC storage seen as NCHW is channels-last memory, the fast layout for these convs.
            yield source[index].float().permute(0, 3, 1, 2), labels[index]

    validate = None
    if val_data is not None:
        val_maps = torch.from_numpy(extractor.extract(val_data.paths, desc="maps val", show_progress=show,
                                                      dtype=np.float16)[0])
        validate = _validator(network, lambda a, b: val_maps[a:b].float().permute(0, 3, 1, 2), len(val_maps),
                              torch.from_numpy(val_data.labels), weights)
    return network, batches, validate, -(-len(labels) // batch_size)


def _augmented_images(trained: TrainedModel, opts: TrainOptions, backbone: nn.Module, train_data: Dataset,
                      val_data: Dataset | None, weights: torch.Tensor | None):
    """The "all" path: PyTorch on freshly augmented images each epoch."""
    from litecls.training.augment import Augmentation, AugmentedImages, to_tensor

    config = get_config(opts.model)
    network = CustomClassifier(backbone, trained.head).to(memory_format=torch.channels_last)
    _say(f"decoding {len(train_data)} training images", opts.show_progress)
    images = AugmentedImages(train_data.paths, train_data.labels, trained.preprocessing,
                             opts.batch_size, opts.seed, Augmentation() if opts.augment else None)
    validate = None
    if val_data is not None:
        pixels = np.stack([trained.preprocessing.prepare(p) for p in val_data.paths])
        validate = _validator(network, lambda a, b: to_tensor(pixels[a:b], config.mean, config.std)
                              .contiguous(memory_format=torch.channels_last), len(pixels),
                              torch.from_numpy(val_data.labels), weights)
    return network, images.batches, validate, len(images)
