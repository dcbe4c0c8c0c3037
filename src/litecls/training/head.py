"""The new classification head, the backbone+head network, and what of the backbone trains."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F


class PixelNormalize(nn.Module):
    """Raw pixels NHWC (0-255) -> ``(x - mean) / std`` per channel -> NCHW, inside a converted graph.

    Args:
        mean: per-channel mean, in pixel units.
        std: per-channel standard deviation, in pixel units.
    """

    def __init__(self, mean: Iterable[float], std: Iterable[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("inv_std", 1.0 / torch.tensor(list(std), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised NCHW input of a batch of NHWC pixels."""
        return ((x - self.mean) * self.inv_std).permute(0, 3, 1, 2)


class ClassifierHead(nn.Module):
    """Dropout and a linear layer on the pooled embedding (Model Maker's head).

    The features go in unscaled (docs/decisions.md, "Training", says why).

    Args:
        in_features: the embedding's width.
        num_classes: outputs.
        dropout: before each linear layer.
        hidden: a ReLU layer of this width in between (0: none).
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.2, hidden: int = 0) -> None:
        super().__init__()
        self.in_features, self.num_classes, self.hidden = in_features, num_classes, hidden
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or in_features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits of a batch of embeddings."""
        return self.layers(features)


class CustomClassifier(nn.Module):
    """A zoo backbone's ``forward_features`` followed by a new head: NCHW normalised input -> logits.

    This is the network that is fine-tuned and exported; the backbone's own
    ImageNet classifier is never called, so the exporter leaves it out.
    """

    def __init__(self, backbone: nn.Module, head: ClassifierHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.backbone.forward_features(x))


def backbone_stages(backbone: nn.Module) -> list[list[nn.Module]]:
    """The backbone's layers in forward order, grouped by stage (stem, each block, head conv)."""
    if hasattr(backbone, "_blocks"):  # EfficientNet-Lite
        return [[backbone._conv_stem, backbone._bn0], *[[b] for b in backbone._blocks],
                [backbone._conv_head, backbone._bn1]]
    if hasattr(backbone, "features"):  # MobileNetV2
        return [[layer] for layer in backbone.features]
    raise TypeError(f"do not know the stages of {type(backbone).__name__}")


def stage_functions(backbone: nn.Module) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """One callable per stage of :func:`backbone_stages`; chained and mean-pooled they are
    ``forward_features`` (so the backbone can be cut between any two stages)."""
    if hasattr(backbone, "_blocks"):
        return [lambda x: F.relu6(backbone._bn0(backbone._conv_stem(x))), *backbone._blocks,
                lambda x: F.relu6(backbone._bn1(backbone._conv_head(x)))]
    if hasattr(backbone, "features"):
        return list(backbone.features)
    raise TypeError(f"do not know the stages of {type(backbone).__name__}")


def run_stages(backbone: nn.Module, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Feature maps (NCHW) after stages ``start:stop`` of the backbone."""
    for stage in stage_functions(backbone)[start:stop]:
        x = stage(x)
    return x


def pool(maps: torch.Tensor) -> torch.Tensor:
    """Global average pooling: NCHW maps -> NC embedding (both zoo families pool this way)."""
    return maps.mean(dim=(2, 3))


def trainable_stages(backbone: nn.Module, layers: str | int) -> int:
    """How many of the last backbone stages ``layers`` unfreezes: "all", "top" (the last third) or N."""
    total = len(backbone_stages(backbone))
    if layers == "all":
        return total
    if layers == "top":
        return math.ceil(total / 3)
    count = int(layers)
    if not 1 <= count <= total:
        raise ValueError(f"fine_tune_layers must be 'all', 'top' or 1..{total}, got {layers!r}")
    return count


def freeze_backbone(backbone: nn.Module, layers: str | int | None) -> list[nn.Parameter]:
    """Freeze all but the top ``layers`` stages (``None``: freeze everything); return the trainable ones.

    Autograd then never differentiates through the frozen bottom, which is
    where the large early feature maps are, so a "top" fine-tune costs
    little more than a forward pass there.
    """
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    if layers is None:
        return []
    stages = backbone_stages(backbone)
    trainable = []
    for stage in stages[len(stages) - trainable_stages(backbone, layers):]:
        for module in stage:
            for parameter in module.parameters():
                parameter.requires_grad_(True)
                trainable.append(parameter)
    return trainable


def set_train_mode(model: nn.Module, training: bool) -> None:
    """Train mode for dropout, but BatchNorm keeps its ImageNet statistics.

    Batch statistics of 32 small greyscale images would overwrite running
    means that the frozen layers below depend on (Keras' fine-tuning advice).
    """
    model.train(training)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
