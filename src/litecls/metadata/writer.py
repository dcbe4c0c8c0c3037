"""Write TFLite metadata into a model, as MediaPipe's and the Task Library's metadata writers do.

The written metadata is what MediaPipe's ``MetadataWriter`` produces for an
image classifier (``add_image_input`` + ``add_classification_output``): the
input's colour space, normalisation and value range, the score output's
range and label files (the first without locale: category names; others
with a locale: display names), packed after the flatbuffer as a zip
archive. litecls adds one model-level associated file,
:data:`litecls.metadata.types.PROCESSING_FILE`, when ``meta.processing`` is set.
"""

from __future__ import annotations

import io
import json
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tflite_schema

from litecls.metadata import metadata_schema_py_generated as mfb
from litecls.metadata.reader import METADATA_IDENTIFIER, METADATA_KEY
from litecls.metadata.types import PROCESSING_FILE, ModelMetadata, OutputHead
from litecls.runtime.flatbuffer import read_model, write_model

#: Every feature written here exists since metadata schema 1.0.0.
MIN_PARSER_VERSION = "1.0.0"
_LABELS_DESCRIPTION = "Labels for categories that the model can recognize."


def _stats(low: list[float] | None, high: list[float] | None) -> mfb.StatsT:
    stats = mfb.StatsT()
    stats.min, stats.max = low, high
    return stats


def _input_metadata(meta: ModelMetadata, tensor_type: int) -> mfb.TensorMetadataT:
    tensor = mfb.TensorMetadataT()
    tensor.name, tensor.description = "image", "Input image to be processed."
    props = mfb.ImagePropertiesT()
    grey = meta.color_space == "GRAYSCALE"
    props.colorSpace = mfb.ColorSpaceType.GRAYSCALE if grey else mfb.ColorSpaceType.RGB
    tensor.content = mfb.ContentT()
    tensor.content.contentPropertiesType = mfb.ContentProperties.ImageProperties
    tensor.content.contentProperties = props
    if tensor_type == tflite_schema.TensorType.UINT8:
        tensor.stats = _stats([0.0], [255.0])
    elif tensor_type == tflite_schema.TensorType.FLOAT32:
        tensor.stats = _stats([(0.0 - m) / s for m, s in zip(meta.mean, meta.std, strict=True)],
                              [(255.0 - m) / s for m, s in zip(meta.mean, meta.std, strict=True)])
    else:
        tensor.stats = _stats(None, None)
    unit = mfb.ProcessUnitT()
    unit.optionsType = mfb.ProcessUnitOptions.NormalizationOptions
    unit.options = mfb.NormalizationOptionsT()
    unit.options.mean, unit.options.std = [float(v) for v in meta.mean], [float(v) for v in meta.std]
    tensor.processUnits = [unit]
    return tensor


def _label_file(name: str, locale: str | None) -> mfb.AssociatedFileT:
    assoc = mfb.AssociatedFileT()
    assoc.name, assoc.description = name, _LABELS_DESCRIPTION
    assoc.type = mfb.AssociatedFileType.TENSOR_AXIS_LABELS
    assoc.locale = locale
    return assoc


def _output_metadata(head: OutputHead, tensor_type: int,
                     prefix: str = "") -> tuple[mfb.TensorMetadataT, dict[str, bytes]]:
    tensor = mfb.TensorMetadataT()
    tensor.name, tensor.description = head.name or "score", "Score of the labels respectively."
    tensor.content = mfb.ContentT()
    tensor.content.contentPropertiesType = mfb.ContentProperties.FeatureProperties
    tensor.content.contentProperties = mfb.FeaturePropertiesT()
    if tensor_type == tflite_schema.TensorType.UINT8:
        tensor.stats = _stats([0.0], [255.0])
    elif tensor_type == tflite_schema.TensorType.FLOAT32:
        tensor.stats = _stats([0.0], [1.0])
    else:
        tensor.stats = _stats(None, None)
    files: dict[str, bytes] = {}
    assocs = []
    if head.labels:
        files[f"{prefix}labels.txt"] = ("\n".join(head.labels) + "\n").encode()
        assocs.append(_label_file(f"{prefix}labels.txt", None))
    for locale, names in head.display_names.items():
        name = f"{prefix}labels_{locale}.txt"
        files[name] = ("\n".join(names) + "\n").encode()
        assocs.append(_label_file(name, locale))
    tensor.associatedFiles = assocs or None
    units = []
    calibration = head.score_calibration
    if calibration is not None:
        unit = mfb.ProcessUnitT()
        unit.optionsType = mfb.ProcessUnitOptions.ScoreCalibrationOptions
        unit.options = mfb.ScoreCalibrationOptionsT()
        unit.options.scoreTransformation = getattr(mfb.ScoreTransformationType, calibration.transformation)
        unit.options.defaultScore = float(calibration.default_score)
        units.append(unit)
        name = f"{prefix}{calibration.file_name}"
        lines = ["" if p is None else ",".join(repr(float(v)) for v in p if v is not None)
                 for p in calibration.parameters]
        files[name] = "\n".join(lines).encode()  # no final newline: MediaPipe would count one more line
        assoc = mfb.AssociatedFileT()
        assoc.name, assoc.description = name, "Sigmoid parameters (scale,slope,offset[,min_score]) per class."
        assoc.type = mfb.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION
        tensor.associatedFiles = [*(tensor.associatedFiles or []), assoc]
    if head.score_threshold is not None:
        unit = mfb.ProcessUnitT()
        unit.optionsType = mfb.ProcessUnitOptions.ScoreThresholdingOptions
        unit.options = mfb.ScoreThresholdingOptionsT()
        unit.options.globalScoreThreshold = float(head.score_threshold)
        units.append(unit)
    tensor.processUnits = units or None
    return tensor, files


def _embedding_metadata() -> mfb.TensorMetadataT:
    """A feature-vector output: name, description and FeatureProperties, no range or labels."""
    tensor = mfb.TensorMetadataT()
    tensor.name, tensor.description = "embedding", "Embedding vector of the input image."
    tensor.content = mfb.ContentT()
    tensor.content.contentPropertiesType = mfb.ContentProperties.FeatureProperties
    tensor.content.contentProperties = mfb.FeaturePropertiesT()
    return tensor


def metadata_flatbuffer(meta: ModelMetadata, input_type: int,
                        output_type: int | list[int]) -> tuple[bytes, dict[str, bytes]]:
    """The metadata flatbuffer for ``meta`` and the files to pack with it.

    Args:
        meta: what to write.
        input_type: the TFLite ``TensorType`` of the image input.
        output_type: the TFLite ``TensorType`` of the score output, or one per
            output of a multi-head model (``meta.heads``).

    Returns:
        ``(flatbuffer bytes, {file name: contents})``.

    Raises:
        ValueError: ``meta.mean`` and ``meta.std`` differ in length.
    """
    if len(meta.mean) != len(meta.std):
        raise ValueError(f"metadata mean and std must have the same length, got {len(meta.mean)} "
                         f"and {len(meta.std)}")
    md = mfb.ModelMetadataT()
    md.name, md.description, md.version = meta.name, meta.description, meta.version
    md.author, md.license = meta.author, meta.license
    md.minParserVersion = MIN_PARSER_VERSION
    graph = mfb.SubGraphMetadataT()
    graph.inputTensorMetadata = [_input_metadata(meta, input_type)]
    output_types = output_type if isinstance(output_type, list) else [output_type]
    heads = list(meta.heads) or [OutputHead(meta.head_name, meta.labels, meta.display_names,
                                            meta.score_threshold, meta.score_calibration)]
    if len(heads) != len(output_types):
        raise ValueError(f"the metadata describes {len(heads)} output head(s), but the model has "
                         f"{len(output_types)} output(s)")
    files: dict[str, bytes] = {}
    graph.outputTensorMetadata = []
    if meta.embedding:
        heads, output_types = [], []
        graph.outputTensorMetadata = [_embedding_metadata()]
    for i, (head, tensor_type) in enumerate(zip(heads, output_types, strict=True)):
        # The first head's label files keep the usual names; later heads' are prefixed with theirs.
        output, head_files = _output_metadata(head, tensor_type, "" if i == 0 else f"{head.name or i}_")
        if set(head_files) & set(files):
            raise ValueError(f"output heads must have distinct names, {head.name!r} repeats")
        graph.outputTensorMetadata.append(output)
        files.update(head_files)
    md.subgraphMetadata = [graph]
    if meta.processing is not None:
        assoc = mfb.AssociatedFileT()
        assoc.name = PROCESSING_FILE
        assoc.description = ("How litecls resizes images for this model "
                             "(resize policy, crop fraction, resampling).")
        assoc.type = mfb.AssociatedFileType.UNKNOWN
        md.associatedFiles = [assoc]
        files[PROCESSING_FILE] = (json.dumps(meta.processing, sort_keys=True, indent=1) + "\n").encode()
    builder = flatbuffers.Builder(0)
    builder.Finish(md.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output()), files


def write_metadata(model: bytes, meta: ModelMetadata) -> bytes:
    """Return ``model`` with ``meta`` as its TFLite metadata and the label (and processing) files packed.

    Metadata and packed files the model already had are replaced.

    Args:
        model: the bytes of a .tflite image classifier (one image input, one score output).
        meta: the metadata to write.

    Returns:
        The bytes of the new .tflite file.

    Raises:
        ModelFileError: ``model`` is not a TFLite flatbuffer.
        ValueError: ``meta`` is inconsistent (mean and std of different lengths,
            or ``meta.heads`` does not match the model's outputs).
    """
    obj = read_model(model)
    graph = obj.subgraphs[0]
    input_type = graph.tensors[graph.inputs[0]].type
    output_types = [graph.tensors[i].type for i in graph.outputs]
    buffer_bytes, files = metadata_flatbuffer(meta, input_type,
                                              output_types if meta.heads else output_types[0])
    buffer = tflite_schema.BufferT()
    buffer.data = np.frombuffer(buffer_bytes, np.uint8)
    entries = [m for m in (obj.metadata or []) if (m.name or b"").decode() != METADATA_KEY]
    existing = [m for m in (obj.metadata or []) if (m.name or b"").decode() == METADATA_KEY]
    if existing:
        obj.buffers[existing[0].buffer] = buffer
        entries.append(existing[0])
    else:
        obj.buffers.append(buffer)
        entry = tflite_schema.MetadataT()
        entry.name, entry.buffer = METADATA_KEY, len(obj.buffers) - 1
        entries.append(entry)
    obj.metadata = entries
    out = io.BytesIO(write_model(obj))
    if files:
        with zipfile.ZipFile(out, "a") as archive:
            for name, contents in files.items():
                archive.writestr(name, contents)
    return out.getvalue()


def strip_metadata(model: bytes) -> bytes:
    """Return ``model`` without TFLite metadata and packed files (its graph unchanged).

    Args:
        model: the bytes of a .tflite file.

    Returns:
        The bytes of the same model with no ``TFLITE_METADATA`` entry (its buffer left empty, so
        buffer indices stay) and no packed files.

    Raises:
        ModelFileError: ``model`` is not a TFLite flatbuffer.
    """
    obj = read_model(model)
    keep = []
    for entry in obj.metadata or []:
        if (entry.name or b"").decode() == METADATA_KEY:
            obj.buffers[entry.buffer].data = None
        else:
            keep.append(entry)
    obj.metadata = keep
    return write_model(obj)
