"""The Ray Data pipeline: inputs -> an actor pool that reads, decodes and invokes in batches -> rows.

Each actor holds one LiteRT interpreter for the job and turns a batch of input rows into
result rows itself: it reads each file, decodes and preprocesses it (PIL with JPEG draft
decoding, the task's own resolved preprocessing) and invokes the tensors ``invoke_batch`` at a
time (a fixed size, padded at the end of a batch, so the interpreter is planned once). Only
paths go in and result rows come out: no decoded tensor crosses the object store (decoding in
separate tasks cost about 2 ms and 150 KB a photo in transfers, docs/decisions.md). One actor
per CPU, each with one CPU and one interpreter thread, keeps every core busy with the serial
decode-then-invoke loop (decoding a photo costs about four times its invoke). An image that
cannot be read or decoded becomes a row with its error, so one bad file never fails the job.
Ray restarts an actor whose process dies and retries its batch (``max_restarts``,
``max_task_retries``); the writer keeps one row per input whatever arrives twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from litecls.bulk.adapters import Preparation, TaskAdapter
from litecls.bulk.sources import Item, read_bytes
from litecls.errors import ImageError
from litecls.processing.image import image_error
from litecls.processing.preprocess import preprocess

#: Columns that identify an input (the resume key) and report its error.
KEY_COLUMNS = ("path", "size", "mtime_ns")
#: The environment of Ray worker processes that load models: no trial run in a forked child.
#: Forking a Ray worker (gRPC and absl threads) can abort the child in absl's fork handlers
#: ("Mutex corrupt"), which would read as a model that crashes LiteRT; the driver runs the trial
#: for the same bytes before Ray starts (:func:`litecls.bulk.job.check_model`).
NO_FORK_ENV = {"env_vars": {"LITECLS_TRIAL_IN_CHILD": "0"}}


@dataclass(frozen=True)
class PipelineSettings:
    """How the work is cut: rows per block and per actor call, images per invoke, actors.

    ``actors``: interpreters in the pool (``None``: the cluster's CPUs over ``actor_cpus``, at
    least one). ``actor_cpus``: the CPUs Ray reserves for each actor, which reads, decodes and
    invokes in turn on one interpreter thread.
    """

    block_rows: int = 64  #: at most; a small job is cut into about 8 blocks
    actor_batch: int = 64
    invoke_batch: int = 8
    actors: int | None = None
    actor_cpus: float = 1.0


def decode_one(path: str, preparation: Preparation) -> np.ndarray | str:
    """Read and preprocess one input.

    Args:
        path: a local path or any URI pyarrow reads.
        preparation: the task's input spec, preprocessing and image limits.

    Returns:
        The ``[H, W, C]`` input tensor, or the error message, worded as ``classify_many`` words it.
    """
    try:
        data = read_bytes(path)
        if not data:
            return f"{path}: empty file"
        return preprocess(data, preparation.input_spec, preparation.processing, preparation.limits)[0]
    except ImageError as exc:
        return str(exc).replace("<bytes>", path, 1)
    except Exception as exc:  # OSError reading, or anything the decoder raises: that file's error
        step = "reading" if isinstance(exc, OSError) else "decoding"
        return str(image_error(path, exc, step))


class InferenceActor:
    """One LiteRT interpreter in a Ray actor: batches of input rows in, result rows (a pyarrow table) out."""

    def __init__(self, adapter: list, schema: Any, invoke_batch: int) -> None:
        """Load the task.

        Args:
            adapter: ``[ObjectRef of the TaskAdapter]``: the model's bytes stay in the object store
                under the driver's reference, out of the actor's constructor arguments, which Ray
                must be able to replay when it restarts the actor.
            schema: the output's pyarrow schema.
            invoke_batch: images per invoke.
        """
        import ray

        self.adapter: TaskAdapter = ray.get(adapter[0])
        self.schema, self.invoke_batch = schema, invoke_batch
        self.task = self.adapter.load()
        self.preparation = self.adapter.preparation(self.task)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        """The rows of ``batch`` (columns ``path``, ``size``, ``mtime_ns``, ``error``): its key
        columns, the results (nulls for failed images), the error."""
        import pyarrow as pa

        errors = [str(e) for e in batch["error"]]
        outputs: list = [None] * len(errors)
        pending: list[tuple[int, np.ndarray]] = []
        for i, path in enumerate(batch["path"]):
            if errors[i]:
                continue
            decoded = decode_one(str(path), self.preparation)
            if isinstance(decoded, str):
                errors[i] = decoded
                continue
            pending.append((i, decoded))
            if len(pending) == self.invoke_batch:
                self._invoke(pending, outputs)
                pending = []
        if pending:
            self._invoke(pending, outputs)
        columns = {name: batch[name] for name in KEY_COLUMNS}
        columns.update(self.adapter.columns(outputs))
        columns["error"] = [e or None for e in errors]
        return pa.Table.from_pydict({name: columns[name] for name in self.schema.names}, schema=self.schema)

    def _invoke(self, pending: list[tuple[int, np.ndarray]], outputs: list) -> None:
        """One invoke of the pending tensors (padded to ``invoke_batch``); their outputs filled in."""
        chunk = np.stack([tensor for _, tensor in pending])
        if len(chunk) < self.invoke_batch:  # the same shape every time: the interpreter is planned once
            chunk = np.concatenate([chunk, np.zeros((self.invoke_batch - len(chunk), *chunk.shape[1:]),
                                                    chunk.dtype)])
        for (i, _), output in zip(pending, self.adapter.infer(self.task, chunk)[:len(pending)], strict=True):
            outputs[i] = output


def result_schema(adapter: TaskAdapter, task: Any) -> Any:
    """The output's columns: path, size, modification time, the task's results, error."""
    import pyarrow as pa

    return pa.schema([pa.field("path", pa.string()), pa.field("size", pa.int64()),
                      pa.field("mtime_ns", pa.int64()), *adapter.fields(task),
                      pa.field("error", pa.string())])


def run_pipeline(items: list[Item], adapter: TaskAdapter, schema: Any,
                 settings: PipelineSettings) -> Iterator[Any]:
    """Stream the result rows of ``items`` as pyarrow tables, in no particular order.

    Args:
        items: the inputs still to do (an item with an ``error`` gets its error row).
        adapter: the task.
        schema: the output's schema (:func:`result_schema`).
        settings: batch sizes, pool size and CPU shares.

    Yields:
        Tables of the output's schema, one per finished block.
    """
    import pyarrow as pa
    import ray

    rows = pa.table({"path": [i.path for i in items], "size": [i.size for i in items],
                     "mtime_ns": [i.mtime_ns for i in items], "error": [i.error or "" for i in items]},
                    schema=pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                                      ("error", pa.string())]))
    cpus = ray.cluster_resources().get("CPU", 1)
    actors = settings.actors or max(1, int(cpus // settings.actor_cpus))
    # At least about 8 blocks, so that a small job still spreads over the pool and streams.
    step = max(1, min(settings.block_rows, -(-len(items) // 8)))
    blocks = [rows.slice(start, step) for start in range(0, rows.num_rows, step)]
    # Ray Data gives pool actors max_restarts=-1 and max_task_retries=-1: a dead actor is
    # restarted and its batches are retried.
    dataset = ray.data.from_arrow(blocks).map_batches(
        InferenceActor, fn_constructor_args=([ray.put(adapter)], schema, settings.invoke_batch),
        batch_size=settings.actor_batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=settings.actor_cpus,
        runtime_env=NO_FORK_ENV)
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")

