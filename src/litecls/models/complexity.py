"""Parameter and multiply-accumulate (MAC) counts of a PyTorch classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def count_params_and_macs(model: nn.Module, input_size: tuple[int, int],
                          channels: int = 3) -> tuple[int, int]:
    """Return (parameters, MACs for one image) counting convolutions and linear layers.

    Batch-norm, activations and pooling are left out, as in published MAC
    figures (EfficientNet-Lite0: 0.39 G).
    """
    import torch
    from torch import nn

    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    return sum(p.numel() for p in model.parameters()), macs
