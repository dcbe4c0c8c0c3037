"""Residual streams of inverted-residual networks, described for quantization tools.

In MobileNetV2 and EfficientNet-Lite the blocks of one stage add their linear
(no activation) 1x1 projections into a shared "residual stream". Because
nothing non-linear touches the stream, scaling its channel ``c`` by ``f`` in
every producer and by ``1 / f`` in every consumer leaves the network's output
unchanged; int8 export uses that to even out channel ranges (see
:mod:`litecls.export.equalize`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class ResidualStream:
    """One stage's residual stream.

    ``producers``: BatchNorms of the projections writing into it; ``consumers``:
    1x1 convolutions reading it; ``taps``: every module whose output *is* the
    stream (the producers and the residual blocks, whose output is the sum).
    """

    producers: list[nn.BatchNorm2d] = field(default_factory=list)
    consumers: list[nn.Conv2d] = field(default_factory=list)
    taps: list[nn.Module] = field(default_factory=list)


@dataclass(frozen=True)
class BlockParts:
    """What stream bookkeeping needs of one inverted-residual block."""

    block: nn.Module
    expand_conv: nn.Conv2d | None  # 1x1 expansion, None when the block has none
    project_bn: nn.BatchNorm2d
    residual: bool


def inverted_residual_streams(blocks: list[BlockParts], head: nn.Conv2d) -> list[ResidualStream]:
    """Streams of a chain of blocks followed by the 1x1 ``head`` convolution.

    A block without a residual connection starts a new stream; each stream's
    readers are the expansion convolutions of the blocks that follow it and,
    for the last stream, the head.
    """
    streams: list[ResidualStream] = []
    for part in blocks:
        read = streams[-1] if streams else None  # the first block reads the stem, not a stream
        if read is not None:
            if part.expand_conv is None:
                raise ValueError("a block reading a residual stream must start with a 1x1 expansion")
            read.consumers.append(part.expand_conv)
        if part.residual:
            if read is None:
                raise ValueError("the first block cannot be residual: nothing writes its input")
            read.producers.append(part.project_bn)
            read.taps += [part.project_bn, part.block]  # the block's output is the updated sum
        else:
            streams.append(ResidualStream([part.project_bn], [], [part.project_bn]))
    if streams:
        streams[-1].consumers.append(head)
    return streams
