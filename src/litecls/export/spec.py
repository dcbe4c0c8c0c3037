"""What an exported classifier looks like from the outside: one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ExportSpec:
    """Everything the exporter needs besides the network itself.

    ``mean``/``std`` are per channel in pixel units (0-255): the network wants
    ``(pixel - mean) / std``. If one value serves all channels it goes into
    the metadata as is; otherwise the metadata says mean 0 / std 1 (raw pixels)
    and the graph applies the per-channel part itself.
    """

    name: str
    labels: list[str]
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""
    version: str = "1"
    author: str = "litecls"
    license: str = ""
    channels: int = 3
    display_names: dict[str, list[str]] = field(default_factory=dict)
    #: Resize policy the model was trained with, recorded for documentation.
    crop_pct: float = 1.0

    @property
    def scalar_normalization(self) -> bool:
        """Whether mean/std are one value for all channels."""
        return len(set(self.mean)) == 1 and len(set(self.std)) == 1

    def metadata_normalization(self) -> tuple[float, float]:
        """The (mean, std) written to metadata: float input = (pixel - mean) / std."""
        if self.scalar_normalization:
            return float(self.mean[0]), float(self.std[0])
        return 0.0, 1.0

    def in_graph_affine(self) -> tuple[list[float] | None, list[float] | None]:
        """Per-channel (scale, shift) turning metadata-normalised input into what the net wants."""
        if self.scalar_normalization:
            return None, None
        m0, s0 = self.metadata_normalization()
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        return (s0 / std).tolist(), ((m0 - mean) / std).tolist()

    def float_input_range(self) -> tuple[float, float]:
        """Float input values that pixels 0 and 255 map to (the uint8 input range)."""
        m0, s0 = self.metadata_normalization()
        return (0.0 - m0) / s0, (255.0 - m0) / s0

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Apply the metadata normalisation to uint8 pixels (NHWC), as a runtime would."""
        m0, s0 = self.metadata_normalization()
        return (pixels.astype(np.float32) - np.float32(m0)) / np.float32(s0)
