"""What several sub-commands share: turning a MODEL argument into a file."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_cli_model(ref: str, cache_dir: str | None) -> str:
    """A zoo reference built into the cache (with progress lines); anything path-like as given.

    Args:
        ref: a ``.tflite`` path, or a zoo model ``NAME[:PRECISION]``.
        cache_dir: the zoo cache (default: ``$LITECLS_CACHE`` or the XDG cache).

    Returns:
        The path of the model file.

    Raises:
        ModelFileError: ``ref`` is neither an existing file nor a zoo model.
        ExportError: an unknown precision, or the build failed.
    """
    from litecls.errors import ModelFileError, UnknownModelError
    from litecls.models.registry import list_models
    from litecls.models.zoo import build, parse_model_ref
    from litecls.progress import stamped

    if "/" in ref or os.sep in ref or ref.endswith(".tflite") or Path(ref).exists():
        return ref
    try:
        name, precision = parse_model_ref(ref)
    except UnknownModelError:
        raise ModelFileError(f"{ref}: no such model file, and not a zoo model "
                             f"(zoo models: {', '.join(list_models())})") from None
    return str(build(name, precision, cache=cache_dir, progress=stamped))
