"""EfficientNet-Lite0/1/2, written to load the ml-illustrated ImageNet checkpoints.

The checkpoints were converted from the TensorFlow reference implementation
(tensorflow/tpu ``efficientnet/lite``), so the network reproduces TF details:
ReLU6 instead of swish, no squeeze-excite, BatchNorm eps 1e-3 and TF "SAME"
padding, which pads stride-2 convolutions asymmetrically (more at the bottom
and right). Module attribute names follow the checkpoint keys so the state
dict loads with ``strict=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from litecls.models.streams import BlockParts, ResidualStream, inverted_residual_streams

BN_EPS = 1e-3

# (repeats, kernel, stride, expand_ratio, in_filters, out_filters) of EfficientNet-B0,
# scaled per variant by the width and depth coefficients below.
_BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class LiteScaling:
    """Compound-scaling coefficients of one EfficientNet-Lite variant."""

    width: float
    depth: float
    resolution: int
    dropout: float


LITE_SCALING = {
    "efficientnet_lite0": LiteScaling(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteScaling(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteScaling(1.1, 1.2, 260, 0.3),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (TF rule)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:  # never round down by more than 10 %
        rounded += divisor
    return int(rounded)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding for a fixed input size.

    TF pads ``total // 2`` before and the rest after, so a stride-2 3x3 conv on
    an even input pads 0 on top/left and 1 on bottom/right; PyTorch's symmetric
    ``padding=1`` would shift every feature map by half a pixel.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, image_size: int,
                 groups: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel, stride, padding=0, groups=groups, bias=False)
        out = math.ceil(image_size / stride)
        total = max((out - 1) * stride + kernel - image_size, 0)
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise KxK, 1x1 project (no SE in Lite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int,
                 image_size: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride, image_size, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.use_residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite classifier taking NCHW float input normalised as the config says."""

    def __init__(self, scaling: LiteScaling, num_classes: int = 1000) -> None:
        super().__init__()
        size = scaling.resolution
        # Stem and head widths are fixed in the Lite family ("fix_head_stem").
        self._conv_stem = SamePadConv2d(3, 32, 3, 2, size)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        size = math.ceil(size / 2)
        blocks = []
        last = len(_BASE_STAGES) - 1
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_BASE_STAGES):
            cin = 32 if i == 0 else round_filters(cin, scaling.width)
            cout = round_filters(cout, scaling.width)
            # The first and last stage are not repeated more in Lite variants.
            if 0 < i < last:
                repeats = math.ceil(scaling.depth * repeats)
            for r in range(repeats):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, kernel,
                                          stride if r == 0 else 1, expand, size))
                if r == 0:
                    size = math.ceil(size / stride)
        self._blocks = nn.ModuleList(blocks)
        self.num_features = 1280
        self._conv_head = nn.Conv2d(cout, self.num_features, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(self.num_features, eps=BN_EPS)
        self._dropout = nn.Dropout(scaling.dropout)
        self._fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 1280-d embedding (input of the classifier)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits."""
        return self._fc(self._dropout(self.forward_features(x)))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the ImageNet head with a fresh one for ``num_classes`` classes."""
        self._fc = nn.Linear(self.num_features, num_classes)

    def residual_streams(self) -> list[ResidualStream]:
        """The residual streams between the blocks (see :mod:`litecls.models.streams`)."""
        parts = [BlockParts(b, b._expand_conv if b.has_expand else None, b._bn2, b.use_residual)
                 for b in self._blocks]
        return inverted_residual_streams(parts, self._conv_head)

    @property
    def classifier(self) -> nn.Linear:
        """The final linear layer."""
        return self._fc
