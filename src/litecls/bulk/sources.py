"""What a bulk job reads: a folder, a glob, a text file of paths, or a Parquet/CSV file with a path column.

Paths are local or anything :func:`pyarrow.fs.FileSystem.from_uri` understands (``s3://``,
``gs://``, ``hdfs://``, ``file://``...). Every input becomes one :class:`Item` with the size and
modification time that key it for resuming; an entry of a list that is missing or a folder is
an item with its error, so it gets its own row in the output like any unreadable image.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from litecls.errors import BulkError
from litecls.imagefiles import is_image_name

#: A source containing one of these is a glob when no file of that name exists.
_GLOB_CHARS = re.compile(r"[*?\[]")
#: Suffixes read as tables with a path column; any other file is a text file of paths.
TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class Item:
    """One input: ``path`` as written to the output (an absolute local path or a URI).

    ``size`` and ``mtime_ns`` are ``None`` for an entry that could not be examined (``error``
    says why).
    """

    path: str
    size: int | None
    mtime_ns: int | None
    error: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """What makes an input done: path, size and modification time (-1 when unknown)."""
        return (self.path, -1 if self.size is None else self.size,
                -1 if self.mtime_ns is None else self.mtime_ns)


def _is_uri(text: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None


def _filesystem(source: str) -> tuple[object, str, str]:
    """``(filesystem, path in it, prefix that turns a path in it back into what the user wrote)``."""
    from pyarrow import fs

    if not _is_uri(source):
        return fs.LocalFileSystem(), os.path.abspath(source), ""
    try:
        filesystem, path = fs.FileSystem.from_uri(source)
    except (ValueError, OSError) as exc:
        raise BulkError(f"{source}: cannot open this location: {exc}") from None
    scheme = source.split("://", 1)[0]
    return filesystem, path, ("" if scheme == "file" else f"{scheme}://")


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


def list_inputs(source: str, path_column: str = "path") -> list[Item]:
    """The inputs ``source`` names.

    Args:
        source: a folder (searched recursively for image files, hidden ones skipped), a glob
            (``photos/**/*.jpg``), a text file with one path per line (blank lines and ``#``
            comments skipped), or a ``.parquet``/``.csv`` file with a ``path_column``. Relative
            paths in a list start at the list's folder. Local paths or URIs.
        path_column: the column of a Parquet/CSV source holding the paths.

    Returns:
        The items (a folder's and a glob's sorted by path; a list's in its order).

    Raises:
        BulkError: no such source, a table without the column, or nothing to read.
    """
    filesystem, base, prefix = _filesystem(source)
    from pyarrow import fs

    info = filesystem.get_file_info(base)
    if info.type == fs.FileType.Directory:
        selector = fs.FileSelector(base, recursive=True)
        infos = [i for i in filesystem.get_file_info(selector) if i.type == fs.FileType.File
                 and is_image_name(i.path) and not _hidden(os.path.relpath(i.path, base))]
        items = sorted((_item(prefix + i.path, i) for i in infos), key=lambda item: item.path)
    elif info.type == fs.FileType.File and is_image_name(base):
        items = [_item(prefix + base, info)]
    elif info.type == fs.FileType.File:
        paths = _read_list(filesystem, base, path_column)
        folder = os.path.dirname(base)
        items = _stat(filesystem, [p if _is_uri(p) or os.path.isabs(p) else os.path.join(folder, p)
                                   for p in paths], prefix)
    elif _GLOB_CHARS.search(source):
        items = _glob(filesystem, base, prefix)
    else:
        raise BulkError(f"{source}: no such file or folder")
    if not items:
        raise BulkError(f"{source}: no image files found")
    return items


def _item(path: str, info: object) -> Item:
    return Item(path, info.size, info.mtime_ns)  # type: ignore[attr-defined]


def _glob(filesystem: object, pattern: str, prefix: str) -> list[Item]:
    """Files matching ``pattern`` (``**`` spans folders), sorted."""
    from pyarrow import fs

    if isinstance(filesystem, fs.LocalFileSystem):
        paths = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        return _stat(filesystem, paths, prefix)
    parts = PurePosixPath(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    root = str(PurePosixPath(*parts[:fixed])) if fixed else "/"
    infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True))  # type: ignore[attr-defined]
    regex = re.compile(fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*"))
    return sorted((_item(prefix + i.path, i) for i in infos
                   if i.type == fs.FileType.File and regex.match(i.path)), key=lambda item: item.path)


def _read_list(filesystem: object, path: str, column: str) -> list[str]:
    """The paths in a Parquet/CSV table's ``column``, or a text file's lines."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.lower().endswith((".parquet", ".pq")):
            table = pq.read_table(path, columns=[column], filesystem=filesystem)
        elif path.lower().endswith(".csv"):
            with filesystem.open_input_stream(path) as stream:  # type: ignore[attr-defined]
                table = pacsv.read_csv(stream, convert_options=pacsv.ConvertOptions(
                    include_columns=[column], column_types={column: pa.string()}))
        else:
            with filesystem.open_input_stream(path) as stream:  # type: ignore[attr-defined]
                lines = stream.read().decode("utf-8-sig").splitlines()
            return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    except (KeyError, pa.ArrowInvalid) as exc:
        raise BulkError(f"{path}: no column {column!r} to read paths from (--path-column): "
                        f"{' '.join(str(exc).split())[:200]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkError(f"{path}: cannot read: {exc}") from None
    return [str(value) for value in table.column(column).to_pylist() if value]


def _stat(filesystem: object, paths: list[str], prefix: str) -> list[Item]:
    """Items for listed paths, one each, in order; missing entries and folders carry their error."""
    from pyarrow import fs

    items = []
    for path in paths:
        target, fs_path = filesystem, path
        if _is_uri(path):
            target, fs_path, _ = _filesystem(path)
        shown = path if _is_uri(path) else prefix + path
        try:
            info = target.get_file_info(fs_path)  # type: ignore[attr-defined]
        except OSError as exc:
            items.append(Item(shown, None, None, f"{shown}: cannot read: {exc}"))
            continue
        if info.type == fs.FileType.File:
            items.append(Item(shown, info.size, info.mtime_ns))
        elif info.type == fs.FileType.Directory:
            items.append(Item(shown, None, None, f"{shown}: is a directory, not an image"))
        else:
            items.append(Item(shown, None, None, f"{shown}: no such file"))
    return items


#: Filesystems opened by :func:`read_bytes` in this process, by scheme and host (bucket).
_OPEN: dict[str, object] = {}


def read_bytes(path: str) -> bytes:
    """The content of ``path`` (a local path or a URI), for the pool's actors.

    Args:
        path: an :attr:`Item.path`.

    Returns:
        The file's bytes.

    Raises:
        OSError: the file cannot be read.
    """
    if not _is_uri(path):
        with open(path, "rb") as file:
            return file.read()
    scheme, rest = path.split("://", 1)
    if scheme == "file":
        filesystem, fs_path, _ = _filesystem(path)
    else:
        where, fs_path = f"{scheme}://{rest.split('/', 1)[0]}", rest
        if where not in _OPEN:
            _OPEN[where] = _filesystem(path)[0]
        filesystem = _OPEN[where]
    with filesystem.open_input_stream(fs_path) as stream:  # type: ignore[attr-defined]
        return stream.read()
