"""SHA-256 sidecars: a ``NAME.sha256`` file beside each model litecls builds.

The zoo cache and training exports write one (``sha256sum`` format, so
``sha256sum -c NAME.tflite.sha256`` checks it too); loading a file that has
one checks it. A file made elsewhere has no sidecar and nothing is checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from litecls.errors import ModelFileError

SUFFIX = ".sha256"


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the checksum of ``path`` lives: ``path`` + ``.sha256``."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def write_sidecar(path: str | os.PathLike, data: bytes) -> Path:
    """Write the sidecar of ``path`` (whose content is ``data``) atomically; return its path."""
    from litecls.cache import atomic_write

    target = sidecar_path(path)
    atomic_write(target, f"{sha256_hex(data)}  {Path(path).name}\n".encode())
    with contextlib.suppress(OSError):  # the model's permissions (atomic_write leaves 0600)
        os.chmod(target, Path(path).stat().st_mode & 0o666)
    return target


def read_sidecar(path: str | os.PathLike) -> str | None:
    """The checksum recorded for ``path``, or ``None`` when it has no (readable) sidecar."""
    try:
        text = sidecar_path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    digest = text.split()[0].lower() if text.split() else ""
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else ""


def verify_sidecar(path: str | os.PathLike, data: bytes) -> bool:
    """Check ``data`` (the content of ``path``) against its sidecar.

    Returns True when a sidecar matched, False when there is none. Raises
    :class:`ModelFileError` naming the file when the sidecar is unreadable
    or does not match (the file was damaged or changed after it was written).
    """
    expected = read_sidecar(path)
    if expected is None:
        return False
    if not expected:
        raise ModelFileError(f"{path}: its checksum file {sidecar_path(path).name} is damaged; "
                             f"rebuild or re-export the model (or delete the .sha256 file to skip "
                             f"the check)")
    actual = sha256_hex(data)
    if actual != expected:
        raise ModelFileError(
            f"{path}: checksum mismatch: SHA-256 {actual[:12]}... but {sidecar_path(path).name} "
            f"records {expected[:12]}...; the file was damaged or changed after litecls wrote it. "
            f"Rebuild or re-export it (or delete the .sha256 file if the change was deliberate)")
    return True
