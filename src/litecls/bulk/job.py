"""A bulk job from start to end: list the inputs, skip the done ones, run the pipeline, write, report."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from litecls.bulk.adapters import TaskAdapter
from litecls.bulk.pipeline import PipelineSettings, result_schema, run_pipeline
from litecls.bulk.sources import Item, list_inputs
from litecls.bulk.writer import PartWriter, done_keys


@dataclass(frozen=True)
class JobSummary:
    """What a run did: inputs found, skipped as done before, rows written (errors among them), time."""

    inputs: int
    skipped: int
    written: int
    errors: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Rows written per second of pipeline time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


def error_rows(items: list[Item], schema: Any) -> Any:
    """The rows of inputs that failed before reading (no such file, a folder): key and error only."""
    import pyarrow as pa

    return pa.Table.from_pylist([{"path": i.path, "size": i.size, "mtime_ns": i.mtime_ns, "error": i.error}
                                 for i in items], schema=schema)


def check_model(adapter: TaskAdapter) -> None:
    """Load the model once in this process, before Ray starts: its trial run forks safely here.

    The actors skip that trial (:data:`litecls.bulk.pipeline.NO_FORK_ENV`); after this, the
    driver's own load in :func:`run_job` finds the bytes trusted and does not fork either.

    Raises:
        ModelFileError: the model cannot be loaded or crashes LiteRT.
    """
    adapter.load().close()


def run_job(source: str, output: str | os.PathLike, adapter: TaskAdapter,
            settings: PipelineSettings | None = None, path_column: str = "path",
            part_rows: int = 1000, progress: TextIO | None = sys.stderr) -> JobSummary:
    """Run ``adapter``'s task on every input of ``source`` not yet in ``output`` (Ray must be up).

    Call :func:`check_model` before starting Ray.

    Args:
        source: a folder, glob, list file or table (see :func:`litecls.bulk.sources.list_inputs`).
        output: the output folder of Parquet parts.
        adapter: the task (classify, embed) with its options.
        settings: batch sizes and pool size (default :class:`PipelineSettings`).
        path_column: the path column of a Parquet/CSV source.
        part_rows: rows per Parquet part at most.
        progress: where the progress line goes (``None``: nowhere).

    Returns:
        The summary.

    Raises:
        BulkError: the source or the output cannot be used.
        ModelFileError: the model cannot be loaded, or fails to run.
    """
    from litecls.progress import ProgressBar

    settings = settings or PipelineSettings()
    items = list_inputs(source, path_column)
    task = adapter.load()  # here first: a bad model fails before any Ray work starts
    try:
        schema = result_schema(adapter, task)
    finally:
        task.close()
    writer = PartWriter(output, schema, adapter.settings(), part_rows=part_rows)
    done = done_keys(writer.output)
    todo = [item for item in items if item.key not in done]
    started, errors = time.perf_counter(), 0
    bar = ProgressBar("files", progress) if progress is not None else None
    failed = [item for item in todo if item.error is not None]  # listed, but missing or a folder
    if failed:
        errors += writer.add(error_rows(failed, schema)).num_rows
    readable = [item for item in todo if item.error is None]
    if readable:
        for table in run_pipeline(readable, adapter, schema, settings):
            kept = writer.add(table)
            errors += kept.num_rows - kept.column("error").null_count
            if bar is not None:
                bar.update(writer.accepted, len(todo), f"{errors} errors")
    writer.close()
    if bar is not None:
        bar.close()
    return JobSummary(len(items), len(items) - len(todo), writer.written, errors,
                      time.perf_counter() - started)
