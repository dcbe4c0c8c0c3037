"""The image embedder of a trained model: its exported classifier cut before the new head."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litecls.training.model import TrainedModel


def export_embedder(model: TrainedModel, path: str | os.PathLike, precision: str = "int8",
                    classifier: bytes | None = None) -> Path:
    """Write the embedder of ``model`` at ``precision`` to ``path`` (with a ``.sha256`` sidecar).

    The vector is what the trained head reads: the backbone's pooled
    features (fine-tuned layers included), for :class:`litecls.tasks.ImageEmbedder`
    and ``litecls embed`` / ``litecls similar``.

    Args:
        model: the trained model.
        path: the embedder's file.
        precision: "float32", "float16", "dynamic" or "int8".
        classifier: the model's classifier already exported at ``precision`` (saves exporting it again).

    Returns:
        ``path``.

    Raises:
        ExportError: the export fails.
    """
    from litecls.export.embedding import embedder_from_classifier
    from litecls.runtime.integrity import write_sidecar
    from litecls.training.files import write_file

    data = embedder_from_classifier(classifier if classifier is not None else model.export_bytes(precision))
    written = write_file(path, data)
    write_sidecar(written, data)
    return written
