"""PyTorch classifier -> float32 .tflite through litert-torch.

The exported graph is what a mobile app expects: NHWC float input of the
model's size, normalised as the metadata says, and softmax probabilities out.
Per-channel normalisation (MobileNetV2's ImageNet mean/std), which MediaPipe
cannot take from metadata, is folded into one multiply-add inside the graph.
"""

from __future__ import annotations

import torch
from torch import nn

from litecls.export.spec import ExportSpec


class DeployModule(nn.Module):
    """NHWC input -> (optional per-channel affine) -> NCHW classifier -> softmax."""

    def __init__(self, model: nn.Module, spec: ExportSpec) -> None:
        super().__init__()
        self.model = model
        scale, shift = spec.in_graph_affine()
        self.affine = scale is not None
        if self.affine:
            self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
            self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.affine:
            x = x * self.scale + self.shift
        return torch.softmax(self.model(x.permute(0, 3, 1, 2)), dim=-1)


def convert_module(module: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """Convert ``module`` (in eval mode, without gradients) with litert-torch into float32 .tflite bytes.

    Args:
        module: the network to convert; it is put in eval mode.
        input_shape: the shape of its one float32 input, batch included.

    Returns:
        The flatbuffer's bytes (no metadata).

    Raises:
        Exception: whatever litert-torch raises for a graph it cannot lower.
    """
    import litert_torch

    with torch.no_grad():
        edge_model = litert_torch.convert(module.eval(), (torch.zeros(*input_shape),))
    return bytes(edge_model.model_content())


def convert_float32(model: nn.Module, spec: ExportSpec) -> bytes:
    """Convert ``model`` into a float32 .tflite flatbuffer (NHWC in, probabilities out).

    Args:
        model: a classifier taking normalised NCHW input and returning logits.
        spec: the input size, channels and normalisation.

    Returns:
        The flatbuffer's bytes (no metadata).
    """
    height, width = spec.input_size
    return convert_module(DeployModule(model.eval(), spec), (1, height, width, spec.channels))
