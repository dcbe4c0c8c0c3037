"""Fine-tuning: train backbone stages together with the head, at a lower learning rate.

Two ways, chosen by how much of the backbone trains:

* **the top** (``fine_tune_layers="top"`` or a number of stages): the frozen
  bottom is cut off, converted to LiteRT and run *once* over
  ``augment_views`` versions of every training image (the first as is, the
  others augmented); its feature maps are kept in memory (float16) and each
  epoch trains the top stages and head on one version. PyTorch then never
  runs the bottom, where the large early feature maps make eager mode
  slowest (docs/decisions.md, "Training").
* **all of it** (``"all"``): PyTorch on images augmented afresh every epoch
  (random resized crop, flip, colour jitter).

BatchNorm keeps its ImageNet statistics in both (see :func:`set_train_mode`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from litecls.models.registry import get_config
from litecls.progress import say
from litecls.training.features import FeatureExtractor, create_backbone, pixels_to_tflite
from litecls.training.head import (
    ClassifierHead,
    CustomClassifier,
    PixelNormalize,
    backbone_stages,
    freeze_backbone,
    pool,
    run_stages,
    set_train_mode,
    trainable_stages,
)
from litecls.training.trainer import RunContext, run_stage, shuffled_batches, validator

if TYPE_CHECKING:
    from litecls.training.model import TrainedModel

#: Memory the cached feature maps of the "top" path may take; beyond it fewer versions are
#: kept, and beyond one version the images path is used.
MAP_MEMORY_LIMIT = 2 * 1024**3


class _Bottom(nn.Module):
    """Raw pixels NHWC (0-255) -> normalise -> the first ``split`` stages -> NHWC maps."""

    def __init__(self, backbone: nn.Module, mean: list[float], std: list[float], split: int) -> None:
        super().__init__()
        self.backbone, self.split = backbone, split
        self.normalize = PixelNormalize(mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.backbone, self.normalize(x), 0, self.split).permute(0, 2, 3, 1)


class _Top(nn.Module):
    """Feature maps after the frozen bottom (NCHW) -> the trainable stages -> pool -> head."""

    def __init__(self, backbone: nn.Module, head: ClassifierHead, split: int) -> None:
        super().__init__()
        self.backbone, self.head, self.split = backbone, head, split

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(pool(run_stages(self.backbone, maps, self.split)))


def bottom_file(name: str, image_size: int, split: int, cache: str | Path | None) -> Path:
    """The cached LiteRT file of the first ``split`` stages of zoo model ``name`` (built on first use).

    Args:
        name: the zoo backbone.
        image_size: the square input size.
        split: how many stages the file runs.
        cache: the cache folder (default: the zoo cache).

    Returns:
        The file's path.

    Raises:
        CacheDirError: the cache cannot be written.
    """
    from litecls.cache import built_once

    config = get_config(name)
    return built_once(
        f"{config.name}-stages0-{split}-{image_size}px-float32.tflite",
        lambda: pixels_to_tflite(_Bottom(create_backbone(config.name, image_size), config.mean, config.std,
                                         split), image_size), cache)


def fine_tune(trained: TrainedModel, run: RunContext) -> None:
    """Stage 2: fine-tune the top (or all) of ``trained``'s backbone with its head, on augmented images.

    Args:
        trained: holds the head trained on frozen features; afterwards
            ``trained.backbone`` is the fine-tuned backbone.
        run: the run's settings, data, checkpoint and history.

    Raises:
        CacheDirError: the frozen bottom's file cannot be cached.
    """
    opts = run.options
    backbone = create_backbone(opts.model, opts.image_size)
    trainable = freeze_backbone(backbone, opts.fine_tune_layers)
    total = len(backbone_stages(backbone))
    split = total - trainable_stages(backbone, opts.fine_tune_layers)
    network = None
    if split > 0:
        network, batches, validate, steps = _cached_maps(trained, run, backbone, split)
    if network is None:
        network, batches, validate, steps = _augmented_images(trained, run, backbone)
    say(f"fine-tuning the last {total - split} of {total} backbone stages and the head at "
        f"{opts.image_size} px", run.show)
    groups = [{"params": trainable, "lr": opts.fine_tune_lr},
              {"params": list(trained.head.parameters()), "lr": 10 * opts.fine_tune_lr}]
    stage = run.stage("fine-tune", opts.epochs, groups, steps)
    trained.stages["fine-tune"] = run_stage(network, stage, batches, validate,
                                            lambda on: set_train_mode(network, on), run)
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    trained.backbone = backbone.to(memory_format=torch.contiguous_format).eval()
    trained.reset_extractor()  # it ran the frozen backbone


def _map_views(run: RunContext, extractor: FeatureExtractor, split: int,
               views: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``views`` versions of the training set's bottom maps (the first unaugmented), and their labels."""
    from litecls.training.augment import Augmentation, base_image

    opts, train_data = run.options, run.train_data
    augmentation, size = Augmentation(), opts.image_size

    def augmented(view: int) -> Callable[[int, Path], np.ndarray]:
        def load(index: int, image_path: Path) -> np.ndarray:
            rng = np.random.default_rng([opts.seed, view, index])
            return augmentation(base_image(image_path, size), size, rng)

        return load

    maps, failed = [], set()
    for view in range(views):
        say(f"frozen stages 1-{split} in LiteRT, training images, version {view + 1} of {views}"
            + (" (augmented)" if view else ""), run.show)
        out, bad = extractor.extract(train_data.paths, desc=f"maps {view + 1}/{views}",
                                     show_progress=run.show, load=augmented(view) if view else None,
                                     dtype=np.float16)
        maps.append(torch.from_numpy(out))
        failed.update(i for i, _ in bad)
    labels = torch.from_numpy(train_data.labels)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[sorted(failed)] = False
    if not keep.all():
        maps, labels = [m[keep] for m in maps], labels[keep]
    return maps, labels


def _cached_maps(trained: TrainedModel, run: RunContext, backbone: nn.Module, split: int):
    """The "top" path: bottom maps computed once in LiteRT; ``(network, batches, validate, steps)``.

    Returns ``network=None`` when even one version of the maps would not fit in memory.
    """
    opts = run.options
    path = bottom_file(opts.model, opts.image_size, split, trained.cache)
    extractor = FeatureExtractor(path, trained.preprocessing)
    per_image = int(np.prod(extractor.out_shape)) * 2  # float16
    fits = int(MAP_MEMORY_LIMIT // max(1, per_image * len(run.train_data)))
    if fits < 1:
        say("feature maps would not fit in memory: fine-tuning on images instead", run.show)
        return None, None, None, 0
    maps, labels = _map_views(run, extractor, split, min(opts.augment_views if opts.augment else 1, fits))
    network = _Top(backbone, trained.head, split)

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        source = maps[(epoch - 1) % len(maps)]
        for index in shuffled_batches(len(labels), opts.batch_size, opts.seed, "fine-tune", epoch):
            # NHWC storage seen as NCHW is channels-last memory, the fast layout for these convs.
            yield source[index].float().permute(0, 3, 1, 2), labels[index]

    validate = None
    if run.val_data is not None:
        val_maps = torch.from_numpy(extractor.extract(run.val_data.paths, desc="maps val",
                                                      show_progress=run.show, dtype=np.float16)[0])
        validate = validator(network, lambda a, b: val_maps[a:b].float().permute(0, 3, 1, 2), len(val_maps),
                             torch.from_numpy(run.val_data.labels), run.class_weights)
    return network, batches, validate, -(-len(labels) // opts.batch_size)


def _augmented_images(trained: TrainedModel, run: RunContext, backbone: nn.Module):
    """The "all" path: PyTorch on freshly augmented images each epoch."""
    from litecls.training.augment import Augmentation, AugmentedImages, to_tensor

    opts, train_data, val_data = run.options, run.train_data, run.val_data
    config = get_config(opts.model)
    network = CustomClassifier(backbone, trained.head).to(memory_format=torch.channels_last)
    say(f"decoding {len(train_data)} training images", run.show)
    images = AugmentedImages(train_data.paths, train_data.labels, trained.preprocessing,
                             opts.batch_size, opts.seed, Augmentation() if opts.augment else None)
    validate = None
    if val_data is not None:
        pixels = np.stack([trained.preprocessing.prepare(p) for p in val_data.paths])
        validate = validator(network, lambda a, b: to_tensor(pixels[a:b], config.mean, config.std)
                             .contiguous(memory_format=torch.channels_last), len(pixels),
                             torch.from_numpy(val_data.labels), run.class_weights)
    return network, images.batches, validate, len(images)
