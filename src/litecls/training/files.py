"""Writing the files a user takes away (models, labels, reports)."""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` atomically (temporary file + rename) with the usual permissions.

    :func:`litecls.cache.atomic_write` leaves the private 0600 mode of
    its temporary file, right for a cache but not for a model meant to be
    copied into an app.
    """
    from litecls.cache import atomic_write

    path = Path(path)
    atomic_write(path, data)
    os.chmod(path, 0o666 & ~_umask())
    return path
