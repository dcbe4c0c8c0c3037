"""The Ray Data pipeline: inputs -> read and decode in tasks -> batched invokes in an actor pool -> rows.

Decoding runs in stateless tasks (PIL with JPEG draft decoding, the task's own preprocessing);
inference runs in a pool of actors, each holding one LiteRT interpreter for the job, fed
batches of preprocessed tensors and invoking them ``invoke_batch`` at a time (a fixed size,
padded at the end of a block, so the interpreter is planned once). An image that cannot be
read or decoded travels on as a row with its error, so one bad file never fails the job. Ray
restarts an actor whose process dies and retries its batch (``max_restarts``,
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
    """How the work is cut: rows per block and per call of a task or actor, images per invoke, actors.

    ``actors``: interpreters in the pool (``None``: one per four CPUs of the cluster, at least
    one: decoding a photo costs about four times its batched int8 invoke, docs/decisions.md).
    ``decode_cpus`` and ``actor_cpus``: the CPU share Ray reserves for each decoding task and
    each actor (fractions: on 2 cores, two decoding tasks and the interpreter run side by side,
    as the threads of ``classify_many`` do).
    """

    block_rows: int = 32  #: at most; a small job is cut into about 8 blocks
    decode_batch: int = 16
    actor_batch: int = 32
    invoke_batch: int = 8
    actors: int | None = None
    decode_cpus: float = 0.75
    actor_cpus: float = 0.5


def decode_batch(batch: dict[str, np.ndarray], preparation: Preparation) -> dict[str, np.ndarray]:
    """Read and preprocess a batch of inputs (a Ray Data task).

    Args:
        batch: columns ``path``, ``size``, ``mtime_ns``, ``error`` ("" for none).
        preparation: the task's input spec, preprocessing and image limits.

    Returns:
        The same columns with ``error`` filled for images that failed, plus ``tensor``: the
        ``[N, H, W, C]`` input tensors (zeros where the image failed).
    """
    spec = preparation.input_spec
    paths = batch["path"]
    errors = np.array(batch["error"], dtype=object)
    tensors = np.zeros((len(paths), *spec.shape[1:]), dtype=spec.dtype)
    for i, path in enumerate(paths):
        if errors[i]:
            continue
        try:
            data = read_bytes(str(path))
            if not data:  # worded as classify_many words an empty file
                errors[i] = f"{path}: empty file"
                continue
            tensors[i] = preprocess(data, spec, preparation.processing, preparation.limits)[0]
        except ImageError as exc:
            errors[i] = str(exc).replace("<bytes>", str(path), 1)
        except Exception as exc:  # OSError reading, or anything the decoder raises: that file's error
            step = "reading" if isinstance(exc, OSError) else "decoding"
            errors[i] = str(image_error(str(path), exc, step))
    return {**{name: batch[name] for name in KEY_COLUMNS}, "error": errors, "tensor": tensors}


class InferenceActor:
    """One LiteRT interpreter in a Ray actor: batches of tensors in, result rows (a pyarrow table) out."""

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

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        """The rows of ``batch``: its key columns, the results (nulls for failed images), the error."""
        import pyarrow as pa

        errors = [str(e) for e in batch["error"]]
        good = np.flatnonzero(np.array([not e for e in errors], dtype=bool))
        outputs: list = [None] * len(errors)
        tensors = batch["tensor"]
        step = self.invoke_batch
        for start in range(0, len(good), step):
            index = good[start:start + step]
            chunk = tensors[index]
            if len(chunk) < step:  # the same shape every time: the interpreter is planned once
                chunk = np.concatenate([chunk, np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            for i, output in zip(index, self.adapter.infer(self.task, chunk)[:len(index)], strict=True):
                outputs[i] = output
        columns = {name: batch[name] for name in KEY_COLUMNS}
        columns.update(self.adapter.columns(outputs))
        columns["error"] = [e or None for e in errors]
        return pa.Table.from_pydict({name: columns[name] for name in self.schema.names}, schema=self.schema)


def result_schema(adapter: TaskAdapter, task: Any) -> Any:
    """The output's columns: path, size, modification time, the task's results, error."""
    import pyarrow as pa

    return pa.schema([pa.field("path", pa.string()), pa.field("size", pa.int64()),
                      pa.field("mtime_ns", pa.int64()), *adapter.fields(task),
                      pa.field("error", pa.string())])


def run_pipeline(items: list[Item], adapter: TaskAdapter, preparation: Preparation, schema: Any,
                 settings: PipelineSettings) -> Iterator[Any]:
    """Stream the result rows of ``items`` as pyarrow tables, in no particular order.

    Args:
        items: the inputs still to do (an item with an ``error`` gets its error row).
        adapter: the task.
        preparation: its preprocessing, for the decoding tasks.
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
    actors = settings.actors or max(1, int(ray.cluster_resources().get("CPU", 4) // 4))
    # At least about 8 blocks, so that a small job still spreads over the pool and streams.
    step = max(1, min(settings.block_rows, -(-len(items) // 8)))
    blocks = [rows.slice(start, step) for start in range(0, rows.num_rows, step)]
    dataset = (ray.data.from_arrow(blocks)
               .map_batches(decode_batch, fn_kwargs={"preparation": preparation},
                            batch_size=settings.decode_batch, batch_format="numpy",
                            num_cpus=settings.decode_cpus)
               # Ray Data gives pool actors max_restarts=-1 and max_task_retries=-1: a dead
               # actor is restarted and its batches are retried.
               .map_batches(InferenceActor, fn_constructor_args=([ray.put(adapter)], schema,
                                                                 settings.invoke_batch),
                            batch_size=settings.actor_batch, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=settings.actor_cpus,
                            runtime_env=NO_FORK_ENV))
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")

