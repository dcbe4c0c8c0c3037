"""The output: a folder of Parquet parts, written atomically, with one row per input.

Each part is written under a temporary name (``.part-*.tmp``) and renamed when complete, so an
interrupted run leaves only whole parts (stale temporary files are removed at the next start).
The rows already in the folder make the set of inputs that are done, keyed by path, size and
modification time: a rerun skips them, and a row that arrives twice (a retried batch) is
written once. ``_litecls_job.json`` records the task and model, so a rerun with another model
cannot add to the folder.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from litecls.errors import BulkError

#: The job file: the task and settings the rows in the folder were made with.
JOB_FILE = "_litecls_job.json"


def done_keys(output: Path) -> set[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of every row in the complete parts of ``output``.

    Args:
        output: the output folder (need not exist).

    Returns:
        The keys (size and time -1 where unknown).

    Raises:
        BulkError: a part cannot be read.
    """
    import pyarrow.parquet as pq

    keys: set[tuple[str, int, int]] = set()
    for part in sorted(output.glob("part-*.parquet")):
        try:
            table = pq.read_table(part, columns=["path", "size", "mtime_ns"])
        except Exception as exc:
            raise BulkError(f"{part}: cannot read this part of the output: {exc}") from None
        columns = table.to_pydict()
        keys.update(zip(columns["path"], [-1 if s is None else s for s in columns["size"]],
                        [-1 if t is None else t for t in columns["mtime_ns"]], strict=True))
    return keys


class PartWriter:
    """Rows in, complete Parquet parts out; a row whose key is already written is dropped."""

    def __init__(self, output: str | os.PathLike, schema: Any, settings: dict[str, Any],
                 part_rows: int = 1000, part_seconds: float = 30.0) -> None:
        """Open ``output`` for writing (created if needed).

        Args:
            output: the folder.
            schema: the rows' pyarrow schema.
            settings: what the job file records (task, model); must match an existing one.
            part_rows: rows per part at most.
            part_seconds: a part is written at least this often while rows arrive.

        Raises:
            BulkError: ``output`` is a file, cannot be created, or holds another job's rows.
        """
        self.output, self.schema = Path(output), schema
        self.part_rows, self.part_seconds = part_rows, part_seconds
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BulkError(f"{output}: cannot create the output folder: {exc.strerror or exc}") from None
        _check_job(self.output / JOB_FILE, settings)
        for stale in self.output.glob(".part-*.tmp"):  # left by an interrupted run
            stale.unlink(missing_ok=True)
        self.done = done_keys(self.output)
        self.run = uuid.uuid4().hex[:8]
        self.parts = 0
        #: Rows written in complete parts, and rows accepted (written or waiting), by this run.
        self.written = 0
        self.accepted = 0
        self._pending: list[Any] = []
        self._rows = 0
        self._last = time.monotonic()

    def add(self, table: Any) -> Any:
        """Buffer ``table``'s rows that are not written yet; write a part when enough are waiting.

        Returns:
            The rows kept (the others were duplicates).
        """
        import pyarrow as pa

        columns = table.select(["path", "size", "mtime_ns"]).to_pydict()
        keep = []
        for i, key in enumerate(zip(columns["path"], columns["size"], columns["mtime_ns"], strict=True)):
            key = (key[0], -1 if key[1] is None else key[1], -1 if key[2] is None else key[2])
            if key not in self.done:
                self.done.add(key)
                keep.append(i)
        kept = table.take(pa.array(keep, pa.int64())) if len(keep) < table.num_rows else table
        self.accepted += kept.num_rows
        if kept.num_rows:
            self._pending.append(kept)
            self._rows += kept.num_rows
        if self._rows >= self.part_rows or (self._rows and time.monotonic() - self._last > self.part_seconds):
            self.flush()
        return kept

    def flush(self) -> None:
        """Write the waiting rows as one part: a temporary file, synced, then renamed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._last = time.monotonic()
        if not self._rows:
            return
        table = pa.concat_tables(self._pending).cast(self.schema)
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{self.run}-{self.parts:05d}.parquet"
        temporary = self.output / f".{name}.tmp"
        with open(temporary, "wb") as file:
            pq.write_table(table, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.output / name)
        self.parts += 1
        self.written += table.num_rows
        self._pending, self._rows = [], 0

    def close(self) -> None:
        """Write what is waiting."""
        self.flush()


def _check_job(path: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` in the job file, or check that they match the recorded ones."""
    if path.exists():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BulkError(f"{path}: unreadable job file: {exc}") from None
        if recorded != settings:
            changed = sorted(k for k in {*recorded, *settings} if recorded.get(k) != settings.get(k))
            raise BulkError(f"{path.parent}: holds rows made with other settings ({', '.join(changed)}); "
                            f"give another --output, or remove this one to start over")
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
