"""Read the TFLite metadata of a model: the flatbuffer stored under ``TFLITE_METADATA`` and its packed files.

Works with only ``flatbuffers`` and ``ai-edge-litert`` installed: the metadata
schema module is generated code kept in this package
(``scripts/gen_metadata_schema.sh``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

from ai_edge_litert import schema_py_generated as tflite_schema

from litecls.errors import MetadataError, ModelFileError
from litecls.metadata import metadata_schema_py_generated as mfb
from litecls.metadata.types import PROCESSING_FILE, ModelMetadata, OutputHead, ScoreCalibration

#: Key of the metadata entry in the model flatbuffer, as MediaPipe and the Task Library write it.
METADATA_KEY = "TFLITE_METADATA"
#: File identifier of a metadata flatbuffer.
METADATA_IDENTIFIER = b"M001"


def metadata_buffer(model: bytes) -> bytes | None:
    """The raw metadata flatbuffer of ``model``, or ``None`` when it has none.

    Args:
        model: the bytes of a .tflite file.

    Returns:
        The bytes stored under ``TFLITE_METADATA``, or ``None``.

    Raises:
        ModelFileError: ``model`` is not a readable TFLite flatbuffer.
    """
    try:
        root = tflite_schema.Model.GetRootAs(model, 0)
        for i in range(root.MetadataLength()):
            entry = root.Metadata(i)
            if entry.Name() and entry.Name().decode() == METADATA_KEY:
                buffer = root.Buffers(entry.Buffer())
                if buffer.Offset() > 1:  # stored after the flatbuffer
                    return bytes(model[buffer.Offset(): buffer.Offset() + buffer.Size()])
                return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    except Exception as exc:  # flatbuffers raises bare errors on garbage
        raise ModelFileError(f"not a TFLite model: {exc}") from None
    return None


def packed_files(model: bytes) -> dict[str, bytes]:
    """Files packed in the model (the zip archive appended after the flatbuffer), by name.

    Args:
        model: the bytes of a .tflite file.

    Returns:
        ``{name: contents}``; empty when nothing is packed.

    Raises:
        MetadataError: an archive is there but cannot be read.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
    except (zipfile.LargeZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise MetadataError(f"the files packed in the model cannot be read: {exc}") from None


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def read_metadata(model: bytes | str | os.PathLike) -> ModelMetadata | None:
    """Parse the TFLite metadata of a model.

    Args:
        model: the model's bytes, or the path of a .tflite file.

    Returns:
        The metadata, or ``None`` when the model has none. Files named by the
        metadata but not packed in the model are listed in ``missing_files``
        (the caller decides whether it can do without them).

    Raises:
        ModelFileError: the file cannot be read or is not a TFLite model.
        MetadataError: the metadata flatbuffer, a label file or the
            processing file is corrupt.
    """
    if isinstance(model, (str, os.PathLike)):
        try:
            data = Path(model).read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{model}: cannot read model file: {exc.strerror or exc}") from None
    else:
        data = bytes(model)
    buffer = metadata_buffer(data)
    if buffer is None:
        return None
    try:
        if len(buffer) < 8 or not mfb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
            raise ValueError(f"expected the identifier {METADATA_IDENTIFIER.decode()!r} at byte 4")
        md = mfb.ModelMetadataT.InitFromObj(mfb.ModelMetadata.GetRootAs(buffer, 0))
    except Exception as exc:  # garbage makes flatbuffers raise anything from struct.error to IndexError
        raise MetadataError(f"the model's metadata is corrupt ({len(buffer):,} bytes): {exc}") from None
    files = packed_files(data)
    meta = ModelMetadata(name=_text(md.name), description=_text(md.description), version=_text(md.version),
                         author=_text(md.author), license=_text(md.license),
                         min_parser_version=_text(md.minParserVersion), associated_files=sorted(files))
    named: list[mfb.AssociatedFileT] = list(md.associatedFiles or [])
    graph = md.subgraphMetadata[0] if md.subgraphMetadata else None
    if graph is not None and graph.inputTensorMetadata:
        _read_input(graph.inputTensorMetadata[0], meta)
    for output in (graph.outputTensorMetadata or []) if graph is not None else []:
        named += list(output.associatedFiles or [])
        head = OutputHead(name=_text(output.name))
        _read_labels(output, files, head)
        head.score_threshold = _score_threshold(output)
        head.score_calibration = _score_calibration(output, files)
        meta.heads.append(head)
    if meta.heads:
        first = meta.heads[0]
        meta.labels, meta.display_names = first.labels, first.display_names
        meta.head_name, meta.score_threshold = first.name, first.score_threshold
        meta.score_calibration = first.score_calibration
    # What litecls's writer (and MediaPipe's embedder models) call a feature-vector output.
    meta.embedding = len(meta.heads) == 1 and meta.head_name == "embedding" and not meta.labels
    if len(meta.heads) == 1:
        meta.heads = []
    for assoc in (md.associatedFiles or []):
        if _text(assoc.name) == PROCESSING_FILE and PROCESSING_FILE in files:
            meta.processing = _processing(files[PROCESSING_FILE])
    meta.missing_files = sorted({_text(a.name) for a in named} - set(files))
    return meta


def _read_input(tensor: mfb.TensorMetadataT, meta: ModelMetadata) -> None:
    for unit in tensor.processUnits or []:
        if unit.optionsType == mfb.ProcessUnitOptions.NormalizationOptions and unit.options is not None:
            meta.mean = [float(v) for v in (unit.options.mean if unit.options.mean is not None else [])]
            meta.std = [float(v) for v in (unit.options.std if unit.options.std is not None else [])]
    content = tensor.content
    if content is not None and content.contentPropertiesType == mfb.ContentProperties.ImageProperties:
        grey = content.contentProperties.colorSpace == mfb.ColorSpaceType.GRAYSCALE
        meta.color_space = "GRAYSCALE" if grey else "RGB"


def _score_threshold(tensor: mfb.TensorMetadataT) -> float | None:
    for unit in tensor.processUnits or []:
        if unit.optionsType == mfb.ProcessUnitOptions.ScoreThresholdingOptions and unit.options is not None:
            return float(unit.options.globalScoreThreshold)
    return None


_TRANSFORMATIONS = {mfb.ScoreTransformationType.IDENTITY: "IDENTITY", mfb.ScoreTransformationType.LOG: "LOG",
                    mfb.ScoreTransformationType.INVERSE_LOGISTIC: "INVERSE_LOGISTIC"}


def _score_calibration(tensor: mfb.TensorMetadataT, files: dict[str, bytes]) -> ScoreCalibration | None:
    options = next((unit.options for unit in tensor.processUnits or []
                    if unit.optionsType == mfb.ProcessUnitOptions.ScoreCalibrationOptions), None)
    assoc = next((a for a in tensor.associatedFiles or []
                  if a.type == mfb.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION), None)
    if options is None or assoc is None or _text(assoc.name) not in files:
        return None  # (a named but missing file is reported through ``missing_files``)
    name = _text(assoc.name)
    parameters: list[tuple[float, float, float, float | None] | None] = []
    try:
        for number, line in enumerate(files[name].decode("utf-8").split("\n"), 1):
            values = [float(v) for v in line.split(",")] if line.strip() else []
            if values and len(values) not in (3, 4):
                raise ValueError(f"line {number} has {len(values)} values, "
                                 "expected scale,slope,offset[,min_score]")
            parameters.append((values[0], values[1], values[2], values[3] if len(values) == 4 else None)
                              if values else None)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MetadataError(f"score calibration file {name!r} packed in the model is invalid: "
                            f"{exc}") from None
    transformation = _TRANSFORMATIONS.get(options.scoreTransformation)
    if transformation is None:
        raise MetadataError(f"unknown score transformation {options.scoreTransformation} in the metadata")
    return ScoreCalibration(transformation, float(options.defaultScore), parameters, name)


def _read_labels(tensor: mfb.TensorMetadataT, files: dict[str, bytes], meta: OutputHead) -> None:
    for assoc in tensor.associatedFiles or []:
        if assoc.type != mfb.AssociatedFileType.TENSOR_AXIS_LABELS:
            continue
        name, locale = _text(assoc.name), _text(assoc.locale)
        if name not in files:
            continue
        try:
            names = files[name].decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise MetadataError(f"label file {name!r} packed in the model is not UTF-8 text: {exc}") from None
        if locale:
            meta.display_names.setdefault(locale, names)
        elif not meta.labels:
            meta.labels = names
    if not meta.labels and len(meta.display_names) == 1:
        # A model whose only label file has a locale still gets category names (as the Task Library does).
        meta.labels = list(next(iter(meta.display_names.values())))


def _processing(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{PROCESSING_FILE} packed in the model is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MetadataError(f"{PROCESSING_FILE} packed in the model is not a JSON object")
    return value
