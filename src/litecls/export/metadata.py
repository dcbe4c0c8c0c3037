"""Standard TFLite model metadata: write it (MediaPipe's writer) and read it back.

The metadata is the flatbuffer schema shared by the TFLite Task Library,
MediaPipe Tasks and Android Studio: model name, description, version,
author and licence; the input image's colour space and normalisation; the
labels packed as an associated file of type TENSOR_AXIS_LABELS (the first,
without locale, gives category names; a second with locale "en" gives
display names).
"""

from __future__ import annotations

import io
import sys
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ai_edge_litert import schema_py_generated as tflite_schema

from litecls.errors import ModelFileError

_METADATA_KEY = "TFLITE_METADATA"
#: Every feature written here (normalisation, image properties, label files
#: with locales) exists since metadata schema 1.0.0.
MIN_PARSER_VERSION = "1.0.0"


def _install_version_shim() -> None:
    """Stand in for the native helper that mediapipe 1.2.3's wheel lacks.

    ``metadata.py`` imports ``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``
    only to stamp the minimum parser version; the module is missing from the
    wheel. We register a module with that one function, and only when the
    real one cannot be imported.
    """
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(name)
        return
    except ImportError:
        pass
    parts = name.split(".")
    for i in range(3, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    shim = sys.modules[name]
    shim.GetMinimumMetadataParserVersion = lambda _buffer: MIN_PARSER_VERSION  # type: ignore[attr-defined]
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], shim)


@dataclass
class ModelMetadata:
    """What litecls writes into, and reads from, a model's metadata."""

    name: str
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    #: ``(pixel - mean) / std`` is what the float input expects; one value or one per channel.
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    color_space: str = "RGB"  # or "GRAYSCALE"
    labels: list[str] = field(default_factory=list)
    display_names: dict[str, list[str]] = field(default_factory=dict)  # locale -> names
    min_parser_version: str = ""
    associated_files: list[str] = field(default_factory=list)


def write_metadata(model: bytes, meta: ModelMetadata) -> bytes:
    """Return ``model`` with ``meta`` and its label files embedded."""
    _install_version_shim()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as mfb
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer

    writer = metadata_writer.MetadataWriter(bytearray(model))
    # add_general_info() takes only name and description; version, author and
    # licence are fields of the same GeneralMd.
    writer._general_md = metadata_info.GeneralMd(
        name=meta.name, version=meta.version, description=meta.description,
        author=meta.author, licenses=meta.license)
    color = mfb.ColorSpaceType.GRAYSCALE if meta.color_space == "GRAYSCALE" else mfb.ColorSpaceType.RGB
    writer.add_image_input(list(meta.mean), list(meta.std), color_space_type=color)
    labels = metadata_writer.Labels().add(list(meta.labels))
    for locale, names in meta.display_names.items():
        labels.add(list(names), locale=locale)
    writer.add_classification_output(labels)
    populated, _json = writer.populate()
    # Clean up the writer's temporary label files now, not at interpreter exit.
    writer._temp_folder.cleanup()
    del writer
    return bytes(populated)


def _metadata_buffer(model: bytes) -> bytes | None:
    root = tflite_schema.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() and entry.Name().decode() == _METADATA_KEY:
            buffer = root.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # stored after the flatbuffer
                return model[buffer.Offset(): buffer.Offset() + buffer.Size()]
            return buffer.DataAsNumpy().tobytes()
    return None


def _decode(value: bytes | None) -> str:
    return value.decode() if value else ""


def read_metadata(model: bytes | str | Path) -> ModelMetadata | None:
    """Parse the metadata of a model (bytes or path); ``None`` if it has none."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as mfb

    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    try:
        buffer = _metadata_buffer(data)
    except Exception as exc:  # flatbuffers raises bare errors on garbage
        raise ModelFileError(f"not a TFLite model: {exc}") from None
    if buffer is None:
        return None
    md = mfb.ModelMetadata.GetRootAsModelMetadata(buffer, 0)
    meta = ModelMetadata(name=_decode(md.Name()), description=_decode(md.Description()),
                         version=_decode(md.Version()), author=_decode(md.Author()),
                         license=_decode(md.License()),
                         min_parser_version=_decode(md.MinParserVersion()))
    files = _packed_files(data)
    meta.associated_files = sorted(files)
    if md.SubgraphMetadataLength() == 0:
        return meta
    graph = md.SubgraphMetadata(0)
    if graph.InputTensorMetadataLength():
        tensor = graph.InputTensorMetadata(0)
        for i in range(tensor.ProcessUnitsLength()):
            unit = tensor.ProcessUnits(i)
            if unit.OptionsType() == mfb.ProcessUnitOptions.NormalizationOptions:
                norm = mfb.NormalizationOptions()
                norm.Init(unit.Options().Bytes, unit.Options().Pos)
                meta.mean = norm.MeanAsNumpy().tolist()
                meta.std = norm.StdAsNumpy().tolist()
        content = tensor.Content()
        if content is not None and content.ContentPropertiesType() == mfb.ContentProperties.ImageProperties:
            props = mfb.ImageProperties()
            props.Init(content.ContentProperties().Bytes, content.ContentProperties().Pos)
            meta.color_space = ("GRAYSCALE" if props.ColorSpace() == mfb.ColorSpaceType.GRAYSCALE
                                else "RGB")
    if graph.OutputTensorMetadataLength():
        tensor = graph.OutputTensorMetadata(0)
        for i in range(tensor.AssociatedFilesLength()):
            assoc = tensor.AssociatedFiles(i)
            if assoc.Type() != mfb.AssociatedFileType.TENSOR_AXIS_LABELS:
                continue
            name, locale = _decode(assoc.Name()), _decode(assoc.Locale())
            names = files.get(name, b"").decode("utf-8").splitlines()
            if locale:
                meta.display_names[locale] = names
            elif not meta.labels:
                meta.labels = names
    return meta


def _packed_files(model: bytes) -> dict[str, bytes]:
    """Associated files, which the populator appends to the model as a zip archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
