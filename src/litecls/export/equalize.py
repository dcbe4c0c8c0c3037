"""Residual-stream equalization: even out channel ranges before int8 calibration.

int8 activations have one scale per tensor. When a few channels of a
residual stream are far wider than the rest (MobileNetV2's torchvision
weights: 15x in its 160-channel stage), the narrow channels keep only a few of
the 256 levels.
The stream is linear, so each channel ``c`` can be multiplied by ``f_c`` in
every producer (BatchNorm weight and bias) and divided by ``f_c`` in every
consumer (1x1 convolution input weights) without changing the float output.

``f_c = (max_range / range_c) ** strength``: ``strength`` 1 makes every channel
as wide as the widest, 0 changes nothing. Full equalization moves the whole
range problem onto the consumers' weights (int8 per output channel); a middle
value splits it, as in data-free quantization (Nagel et al., 2019) and
SmoothQuant (Xiao et al., 2023). docs/decisions.md ("The int8 recipe") has
the strengths measured.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def stream_ranges(model: nn.Module, inputs: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Per-channel max |value| of each residual stream of ``model`` over NCHW ``inputs``."""
    streams = model.residual_streams()
    ranges: list[torch.Tensor | None] = [None] * len(streams)
    hooks = []
    for i, stream in enumerate(streams):
        def record(_module, _inputs, output, i=i):
            peak = output.detach().abs().amax(dim=(0, 2, 3))
            ranges[i] = peak if ranges[i] is None else torch.maximum(ranges[i], peak)
        hooks += [tap.register_forward_hook(record) for tap in stream.taps]
    try:
        with torch.no_grad():
            for batch in inputs:
                model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    if any(r is None for r in ranges):
        raise ValueError("equalization needs at least one input image")
    return ranges  # type: ignore[return-value]


def equalize_residual_streams(model: nn.Module, inputs: Iterable[torch.Tensor],
                              strength: float = 0.5) -> list[torch.Tensor]:
    """Rescale ``model``'s residual-stream channels in place; return each stream's factors.

    ``inputs``: NCHW float batches as the model takes them (representative
    photos: the calibration set). The float output is unchanged up to rounding.
    """
    if not 0 < strength <= 1:
        raise ValueError(f"equalization strength must be in (0, 1], got {strength}")
    model.eval()
    factors = []
    for stream, peak in zip(model.residual_streams(), stream_ranges(model, inputs), strict=True):
        # A channel that never fires keeps its scale rather than being blown up.
        peak = peak.clamp_min(peak.max() * 1e-3)
        factor = (peak.max() / peak) ** strength
        with torch.no_grad():
            for bn in stream.producers:
                bn.weight.mul_(factor)
                bn.bias.mul_(factor)
            for conv in stream.consumers:
                conv.weight.div_(factor[None, :, None, None])
        factors.append(factor)
    return factors
