"""MobileNetV2 (width 1.0, 224 px), laid out like torchvision so its weights load as-is."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from litecls.models.streams import BlockParts, ResidualStream, inverted_residual_streams

# (expand_ratio, out_channels, repeats, first_stride), from the MobileNetV2 paper, table 2.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU6(nn.Sequential):
    """Conv (symmetric padding) + BatchNorm + ReLU6, as torchvision's Conv2dNormActivation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=False),
        )


class InvertedResidual(nn.Module):
    """Expand 1x1 (when ratio > 1), depthwise 3x3, linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(in_ch, mid, kernel=1))
        layers += [
            ConvBNReLU6(mid, mid, stride=stride, groups=mid),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier taking NCHW float input normalised as the config says."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        cin = 32
        for expand, cout, repeats, stride in _STAGES:
            for r in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if r == 0 else 1, expand))
                cin = cout
        self.num_features = 1280
        layers.append(ConvBNReLU6(cin, self.num_features, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 1280-d embedding (input of the classifier)."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self.classifier(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the ImageNet head with a fresh one for ``num_classes`` classes."""
        self.classifier[1] = nn.Linear(self.num_features, num_classes)

    def residual_streams(self) -> list[ResidualStream]:
        """The residual streams between the blocks (see :mod:`litecls.models.streams`)."""
        parts = []
        for block in list(self.features)[1:-1]:
            layers = list(block.conv)
            expand = layers[0][0] if len(layers) == 4 else None  # ConvBNReLU6's conv
            parts.append(BlockParts(block, expand, layers[-1], block.use_residual))
        return inverted_residual_streams(parts, self.features[-1][0])
