"""The model cache folder, and files written into it once, atomically (never half-written)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from litecls.errors import CacheDirError


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where built models live: ``override``, else ``$LITECLS_CACHE``, else XDG cache/litecls.

    Args:
        override: a folder chosen by the caller (``--cache-dir``).

    Returns:
        The folder (not created).
    """
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("LITECLS_CACHE"):
        return Path(os.environ["LITECLS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "litecls" / "models"


def writable_dir(folder: Path) -> Path:
    """``folder``, created if needed and checked to be writable.

    Args:
        folder: the cache folder.

    Returns:
        ``folder``.

    Raises:
        CacheDirError: it cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheDirError(f"cannot create model cache directory {folder}: {exc.strerror}; "
                            "set --cache-dir or LITECLS_CACHE to a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CacheDirError(f"model cache directory {folder} is not writable; "
                            "set --cache-dir or LITECLS_CACHE to a writable folder")
    return folder


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (never half-written).

    The file keeps the temporary file's private mode (0600); see
    :func:`litecls.training.files.write_file` for files meant to be shared.

    Args:
        path: the file to write (its folder must exist).
        data: the whole content.

    Raises:
        OSError: the folder cannot be written.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def built_once(filename: str, make: Callable[[], bytes], cache: str | os.PathLike | None = None,
               announce: Callable[[Path], None] | None = None) -> Path:
    """The cached file ``filename``, made by ``make()`` and written atomically on first use.

    Args:
        filename: the file's name in the cache folder.
        make: returns the file's bytes (called only when the file is not there).
        cache: the cache folder (default: :func:`cache_dir`'s).
        announce: called with the path just before ``make`` runs (a progress line).

    Returns:
        The file's path.

    Raises:
        CacheDirError: the cache folder cannot be created or written.
    """
    path = writable_dir(cache_dir(cache)) / filename
    if not path.is_file():
        if announce is not None:
            announce(path)
        atomic_write(path, make())
    return path
