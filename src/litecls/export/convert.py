"""PyTorch classifier -> float32 .tflite through litert-torch.

The exported graph is what a mobile app expects: NHWC float input of the
model's size, normalised as the metadata says, and softmax probabilities out.
Per-channel normalisation (MobileNetV2's ImageNet mean/std), which MediaPipe
cannot take from metadata, is folded into one multiply-add inside the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def convert_float32(model: nn.Module, spec: ExportSpec) -> bytes:
    """Convert ``model`` (NCHW logits) into a float32 .tflite flatbuffer (NHWC in, probabilities out)."""
    import litert_torch

    module = DeployModule(model.eval(), spec).eval()
    height, width = spec.input_size
    sample = (torch.zeros(1, height, width, spec.channels),)
    with torch.no_grad():
        edge_model = litert_torch.convert(module, sample)
    return bytes(edge_model.model_content())


def reference_probabilities(model: nn.Module, spec: ExportSpec,
                            batch: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Run the exact module that is exported, in PyTorch (for parity checks)."""
    with torch.no_grad():
        return DeployModule(model.eval(), spec).eval()(torch.as_tensor(batch))
