"""Read a .tflite file into LiteRT's flatbuffer object API and write it back (any ai-edge-litert >= 1.4).

Constant buffers stored after the flatbuffer (ai-edge-quantizer's "offset
buffers") are copied inline on reading, so re-packing never drops weights.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from litecls.errors import ModelFileError
from litecls.runtime.interpreter import TFLITE_IDENTIFIER


def read_model(data: bytes) -> schema.ModelT:
    """Parse a model into LiteRT's mutable object API, with all buffers inline.

    Args:
        data: the bytes of a .tflite file.

    Returns:
        The model object.

    Raises:
        ModelFileError: ``data`` is not a readable TFLite flatbuffer.
    """
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except Exception as exc:  # flatbuffers raises anything from struct.error to IndexError on garbage
        raise ModelFileError(f"not a TFLite model: {exc}") from None
    for buffer in model.buffers or []:
        if buffer.offset and buffer.offset > 1:
            if buffer.offset + buffer.size > len(data):
                raise ModelFileError(f"not a TFLite model: a buffer lies past the end of the file "
                                     f"({buffer.offset + buffer.size:,} > {len(data):,} bytes)")
            buffer.data = np.frombuffer(data, np.uint8, buffer.size, buffer.offset).copy()
            buffer.offset = buffer.size = 0
    return model


def write_model(model: schema.ModelT) -> bytes:
    """Serialise a model object (see :func:`read_model`) to the bytes of a .tflite file.

    Args:
        model: the model object.

    Returns:
        The flatbuffer bytes, with the ``TFL3`` identifier.
    """
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), TFLITE_IDENTIFIER)
    return bytes(builder.Output())
