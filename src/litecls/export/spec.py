"""What an exported classifier looks like from the outside: one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litecls.processing.config import ProcessingConfig, normalize


@dataclass
class ExportSpec:
    """Everything the exporter needs besides the network itself.

    If the normalisation is one value for all channels it goes into the
    metadata as is; otherwise the metadata says mean 0 / std 1 (raw pixels)
    and the graph applies the per-channel part itself.

    Attributes:
        name: the model's name in its metadata.
        labels: class names, in output order.
        processing: how images become the network's input: size, resize settings
            (stored in the metadata) and ``mean``/``std`` per channel in pixel
            units (the network wants ``(pixel - mean) / std``).
        description: what the model does.
        version: the file's version.
        author: who made it.
        license: its licence.
        display_names: locale -> display names, in output order.
    """

    name: str
    labels: list[str]
    processing: ProcessingConfig
    description: str = ""
    version: str = "1"
    author: str = "litecls"
    license: str = ""
    display_names: dict[str, list[str]] = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the image input."""
        return self.processing.input_size

    @property
    def channels(self) -> int:
        """Channels of the image input (3 or 1)."""
        return self.processing.channels

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel (or single) mean the network subtracts, in pixel units."""
        return self.processing.mean

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel (or single) std the network divides by, in pixel units."""
        return self.processing.std

    @property
    def scalar_normalization(self) -> bool:
        """Whether mean/std are one value for all channels."""
        return len(set(self.mean)) == 1 and len(set(self.std)) == 1

    def metadata_normalization(self) -> tuple[float, float]:
        """The (mean, std) written to metadata: float input = (pixel - mean) / std.

        Returns:
            The scalar mean and std, or ``(0, 1)`` for per-channel normalisation (done in the graph).
        """
        if self.scalar_normalization:
            return float(self.mean[0]), float(self.std[0])
        return 0.0, 1.0

    def in_graph_affine(self) -> tuple[list[float] | None, list[float] | None]:
        """Per-channel (scale, shift) turning metadata-normalised input into what the net wants.

        Returns:
            ``(scale, shift)`` per channel, or ``(None, None)`` when the metadata does it all.
        """
        if self.scalar_normalization:
            return None, None
        m0, s0 = self.metadata_normalization()
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        return (s0 / std).tolist(), ((m0 - mean) / std).tolist()

    def float_input_range(self) -> tuple[float, float]:
        """Float input values that pixels 0 and 255 map to (the uint8 input range).

        Returns:
            ``(low, high)``.
        """
        m0, s0 = self.metadata_normalization()
        return (0.0 - m0) / s0, (255.0 - m0) / s0

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Apply the metadata normalisation to uint8 pixels (NHWC), as a runtime would.

        Args:
            pixels: uint8 pixels.

        Returns:
            float32 input values.
        """
        return normalize(pixels, *self.metadata_normalization())
