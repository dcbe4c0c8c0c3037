"""Task adapters: what differs between ``bulk classify`` and ``bulk embed``.

The pipeline (:mod:`litecls.bulk.pipeline`) is the same for every task: read, decode and
preprocess, batch, invoke, write rows. An adapter says how to load the task in an actor, how
the actor prepares an image for it (the task's own resolved preprocessing, never a
copy), how to run a batch and what columns the results fill.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from litecls.processing.config import ProcessingConfig
from litecls.processing.image import ImageLimits
from litecls.runtime.interpreter import ImageInputSpec


@dataclass(frozen=True)
class Preparation:
    """What an actor needs to turn image bytes into the task's input tensor."""

    input_spec: ImageInputSpec
    processing: ProcessingConfig
    limits: ImageLimits | None


class TaskAdapter:
    """A task for the bulk pipeline; subclasses set :attr:`kind` and the four task hooks."""

    #: The command's name (``classify``, ``embed``), also recorded in the output's job file.
    kind = ""

    def __init__(self, options: Any) -> None:
        """Take the task's options, with the model file's bytes in place of its path.

        A path on the driver's disk (or a zoo file in its cache) does not exist on the other
        nodes of a cluster; the bytes travel with the options (``base_options.model_asset_buffer``),
        and so do the labels of a labels file.

        Args:
            options: the task's options with ``model_path`` (a file or zoo name) or ``base_options``.

        Raises:
            ModelFileError: the model cannot be found or read.
        """
        from litecls.runtime.interpreter import read_model_bytes
        from litecls.tasks import BaseOptions

        base = options.base_options
        if options.model_path is not None:
            source: Any = self.model_file(options.model_path, options.cache_dir)
        else:
            source = base.model_asset_path if base.model_asset_path is not None else base.model_asset_buffer
            if base.model_asset_path is not None:
                source = self.model_file(base.model_asset_path, options.cache_dir)
        data, _name = read_model_bytes(source)
        delegate = base.delegate if base is not None else None
        changes: dict[str, Any] = {"model_path": None, "base_options": BaseOptions(
            model_asset_buffer=bytes(data), delegate=delegate)}
        labels = getattr(options, "labels", None)
        if isinstance(labels, (str, os.PathLike)):
            from litecls.tasks import load_labels

            changes["labels"] = load_labels(labels)
        self.options = replace(options, **changes)

    def model_file(self, ref: str | os.PathLike, cache_dir: str | os.PathLike | None) -> Path:
        """The .tflite file of a path or zoo reference (a zoo model is built on first use)."""
        raise NotImplementedError

    @property
    def model_sha256(self) -> str:
        """The model's SHA-256, recorded with the output so a rerun cannot mix two models."""
        return hashlib.sha256(self.options.base_options.model_asset_buffer).hexdigest()

    def load(self) -> Any:
        """The task (a LiteRT interpreter and its settings), in the actor's process."""
        raise NotImplementedError

    def preparation(self, task: Any) -> Preparation:
        """How an actor prepares an image for ``task``: its resolved preprocessing."""
        return Preparation(task.signature.input, task.processing, task.options.image_limits)

    def fields(self, task: Any) -> list:
        """The pyarrow fields of the result columns."""
        raise NotImplementedError

    def infer(self, task: Any, batch: np.ndarray) -> list:
        """One output per image of a ``[N, H, W, C]`` batch of preprocessed tensors (one invoke)."""
        raise NotImplementedError

    def columns(self, outputs: list) -> dict[str, list]:
        """The result columns for ``outputs``; ``None`` (an image that failed) leaves nulls."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What must match for a rerun to add to an existing output."""
        return {"task": self.kind, "model_sha256": self.model_sha256}


class ClassifyAdapter(TaskAdapter):
    """``bulk classify``: top-k indices, names and scores and the ambiguous flag of the first head."""

    kind = "classify"

    def model_file(self, ref: str | os.PathLike, cache_dir: str | os.PathLike | None) -> Path:
        from litecls.tasks import resolve_model

        return resolve_model(ref, cache_dir)[0]

    def load(self) -> Any:
        from litecls.tasks import ImageClassifier

        return ImageClassifier.create_from_options(self.options)

    def fields(self, task: Any) -> list:
        import pyarrow as pa

        return [pa.field("indices", pa.list_(pa.int32())), pa.field("names", pa.list_(pa.string())),
                pa.field("scores", pa.list_(pa.float32())), pa.field("ambiguous", pa.bool_())]

    def infer(self, task: Any, batch: np.ndarray) -> list:
        return task.classify_tensors(batch)

    def columns(self, outputs: list) -> dict[str, list]:
        def cats(result: Any) -> list:
            return result.classifications[0].categories

        return {
            "indices": [None if r is None else [c.index for c in cats(r)] for r in outputs],
            "names": [None if r is None else [c.category_name or c.display_name for c in cats(r)]
                      for r in outputs],
            "scores": [None if r is None else [c.score for c in cats(r)] for r in outputs],
            "ambiguous": [None if r is None else bool(r.ambiguous) for r in outputs],
        }

    def settings(self) -> dict[str, Any]:
        opts = self.options
        return {**super().settings(), "max_results": opts.max_results,
                "score_threshold": opts.score_threshold}


class EmbedAdapter(TaskAdapter):
    """``bulk embed``: one float32 vector per image, as a fixed-size list column ``embedding``."""

    kind = "embed"

    def model_file(self, ref: str | os.PathLike, cache_dir: str | os.PathLike | None) -> Path:
        from litecls.tasks.model_source import resolve_model  # type: ignore[import-not-found]

        return resolve_model(ref, cache_dir, task="embedding")[0]

    def load(self) -> Any:
        from litecls.tasks import ImageEmbedder  # type: ignore[attr-defined]

        return ImageEmbedder.create_from_options(self.options)

    def fields(self, task: Any) -> list:
        import pyarrow as pa

        return [pa.field("embedding", pa.list_(pa.float32(), int(task.dimension)))]

    def infer(self, task: Any, batch: np.ndarray) -> Any:
        return task.embed_tensors(batch)

    def columns(self, outputs: list) -> dict[str, list]:
        return {"embedding": [None if v is None else np.asarray(v, np.float32) for v in outputs]}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "l2_normalize": bool(self.options.l2_normalize)}
