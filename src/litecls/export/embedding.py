"""An image embedder from an image classifier: the same graph, cut before its final classifier layer.

Every zoo network (and every network ``litecls.training`` fine-tunes) ends
``global average pool -> FULLY_CONNECTED -> SOFTMAX``; the pooled vector
that enters the classifier layer is the image's embedding. Cutting an
exported classifier there, instead of converting the network again, keeps
everything the classifier's export got right: the same input convention
(float: normalised as the metadata says; int8: uint8 raw pixels), the same
int8 calibration and GPTQ-rounded weights. In the int8 file the classifier
layer reads the pooled vector through a DEQUANTIZE (its logits are float, see
:mod:`litecls.export.quantize`), so the cut output is that float32 tensor:
exactly the int8 levels, dequantized, with the network body full-integer.
"""

from __future__ import annotations

import os
from pathlib import Path

from litecls.errors import ExportError
from litecls.export import flatbuffer
from litecls.metadata import ModelMetadata, read_metadata, strip_metadata, write_metadata
from litecls.runtime.flatbuffer import read_model, write_model

#: Ops that may follow the classifier layer on the way to the output (probabilities, requantizing).
_TAIL_OPS = (flatbuffer.schema.BuiltinOperator.SOFTMAX, flatbuffer.schema.BuiltinOperator.QUANTIZE,
             flatbuffer.schema.BuiltinOperator.DEQUANTIZE, flatbuffer.schema.BuiltinOperator.RESHAPE)


def _feature_tensor(model: flatbuffer.schema.ModelT) -> int:
    """Index of the tensor the final FULLY_CONNECTED reads (the pooled features)."""
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        raise ExportError(f"expected a classifier with one output, found {len(graph.outputs)}")
    tensor = graph.outputs[0]
    while True:
        op = next((o for o in graph.operators if tensor in list(o.outputs)), None)
        kind = None if op is None else flatbuffer.builtin(model, op)
        if kind == flatbuffer.schema.BuiltinOperator.FULLY_CONNECTED:
            return int(op.inputs[0])
        if kind not in _TAIL_OPS:
            raise ExportError("the model does not end in a FULLY_CONNECTED classifier layer (followed only "
                              "by SOFTMAX/QUANTIZE/DEQUANTIZE/RESHAPE); cannot find its feature vector")
        tensor = op.inputs[0]


def _prune(model: flatbuffer.schema.ModelT, output: int) -> None:
    """Make ``output`` the only output; drop the ops, tensors and weights nothing needs any more."""
    graph = model.subgraphs[0]
    old_output = graph.outputs[0]
    needed, kept = {output}, []
    for op in reversed(graph.operators):
        if needed & set(op.outputs):
            kept.append(op)
            needed |= {i for i in op.inputs if i >= 0}
    kept.reverse()
    used = sorted(needed | set(graph.inputs))
    remap = {old: new for new, old in enumerate(used)}
    live_buffers = {graph.tensors[i].buffer for i in used}
    for i, tensor in enumerate(graph.tensors):
        if i not in remap and tensor.buffer not in live_buffers and tensor.buffer > 0:
            model.buffers[tensor.buffer].data = None  # the classifier layer's weights
    graph.tensors = [graph.tensors[i] for i in used]
    for op in kept:
        op.inputs = [remap[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [remap[i] for i in op.outputs]
    graph.operators = kept
    graph.inputs = [remap[i] for i in graph.inputs]
    graph.outputs = [remap[output]]
    graph.tensors[remap[output]].name = b"embedding"
    for signature in model.signatureDefs or []:
        for tensor_map in signature.inputs or []:
            tensor_map.tensorIndex = remap[tensor_map.tensorIndex]
        for tensor_map in signature.outputs or []:
            if tensor_map.tensorIndex == old_output:
                tensor_map.tensorIndex = remap[output]


def embedding_metadata(classifier: ModelMetadata | None, name: str) -> ModelMetadata:
    """The embedder's metadata: the classifier's input normalisation and resize settings, a feature output."""
    if classifier is None:
        return ModelMetadata(name=name, embedding=True)
    description = f"Image embedder: {classifier.description}".strip()
    return ModelMetadata(name=f"{classifier.name} embedder", description=description,
                         version=classifier.version, author=classifier.author, license=classifier.license,
                         mean=list(classifier.mean), std=list(classifier.std),
                         color_space=classifier.color_space, processing=classifier.processing,
                         embedding=True)


def embedder_from_classifier(model: bytes, version: str | None = None) -> bytes:
    """The bytes of an image embedder cut from classifier ``model`` (a .tflite with metadata or without).

    Args:
        model: the classifier's .tflite bytes.
        version: the metadata version to write (default: the classifier's).

    Returns:
        A .tflite with the same input and one float32 ``[1, D]`` output (the
        pooled features), with embedder metadata.

    Raises:
        ExportError: the model does not end in a classifier layer.
    """
    meta = read_metadata(model)
    tree = read_model(strip_metadata(model))  # (LiteRT's own reader needs ai-edge-litert >= 2.3)
    _prune(tree, _feature_tensor(tree))
    body = write_model(tree)
    out = embedding_metadata(meta, "embedder")
    if version is not None:
        out.version = version
    return write_metadata(body, out)


def embedder_bytes(model: bytes) -> bytes:
    """``model`` as an embedder: a labelled classifier cut before its classifier layer, anything else as is.

    Args:
        model: the bytes of a .tflite file.

    Returns:
        The bytes to give :class:`litecls.tasks.ImageEmbedder` (``model_asset_buffer``).

    Raises:
        ExportError: a labelled classifier that does not end in a classifier layer.
    """
    meta = read_metadata(model)
    return embedder_from_classifier(model) if meta is not None and meta.labels else model


def write_embedder(classifier: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the embedder of a classifier .tflite file (e.g. one ``litecls train`` exported) to ``path``.

    Args:
        classifier: the classifier's .tflite file.
        path: where to write the embedder (a ``.sha256`` sidecar is written beside it).

    Returns:
        ``path``.

    Raises:
        ExportError: the model does not end in a classifier layer.
        OSError: ``classifier`` cannot be read or ``path`` written.
    """
    from litecls.models.zoo import atomic_write
    from litecls.runtime.integrity import write_sidecar

    data = embedder_from_classifier(Path(classifier).read_bytes())
    target = Path(path)
    atomic_write(target, data)
    write_sidecar(target, data)
    return target
