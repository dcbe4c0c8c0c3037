"""What an image classifier looks like to LiteRT: its input and score tensors, checked.

:func:`describe_classifier` reads an interpreter's tensors into a
:class:`ClassifierSignature` (or says why the model is not an image
classifier); :func:`check_scores` runs two probe images and refuses outputs
that cannot be class scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import ModelFileError

_INPUT_DTYPES = (np.float32, np.uint8, np.int8)
_OUTPUT_DTYPES = (np.float32, np.uint8, np.int8)


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model: where it is, its shape, type and quantization.

    A quantized value ``q`` stands for the real value ``(q - zero_point) * scale``.

    Attributes:
        index: the tensor's index in the interpreter.
        name: its name.
        shape: its shape.
        dtype: its numpy type.
        scale: quantization scale; 0 means not quantized (LiteRT reports (0.0, 0)).
        zero_point: quantization zero point.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        """True for an integer tensor with quantization parameters."""
        return self.dtype.kind in "ui" and self.scale > 0


@dataclass(frozen=True)
class ImageInputSpec(TensorSpec):
    """The ``[1, height, width, channels]`` image input of a classifier."""

    @property
    def height(self) -> int:
        """Input height in pixels."""
        return self.shape[1]

    @property
    def width(self) -> int:
        """Input width in pixels."""
        return self.shape[2]

    @property
    def channels(self) -> int:
        """1 (greyscale) or 3 (RGB)."""
        return self.shape[3]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``, the order :func:`litecls.processing.image.prepare_image` takes."""
        return self.shape[1], self.shape[2]


@dataclass(frozen=True)
class ScoresOutputSpec(TensorSpec):
    """The ``[1, N]`` (or ``[N]``) score output of a classifier."""

    @property
    def num_classes(self) -> int:
        """Number of classes N."""
        return self.shape[-1]


@dataclass(frozen=True)
class ClassifierSignature:
    """The image input and the score outputs (heads) of an image classifier.

    Attributes:
        input: the image input.
        output: the first head.
        outputs: all heads, in the model's output order (the order of its output metadata).
    """

    input: ImageInputSpec
    output: ScoresOutputSpec
    outputs: tuple[ScoresOutputSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.outputs:
            object.__setattr__(self, "outputs", (self.output,))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (LiteRT's span several, with C++ file names)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines)) or type(exc).__name__


def _spec(cls: type[TensorSpec], detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    return cls(index=int(detail["index"]), name=str(detail["name"]),
               shape=tuple(int(d) for d in detail["shape"]), dtype=np.dtype(detail["dtype"]),
               scale=float(scale), zero_point=int(zero_point))


def describe_classifier(interpreter: Interpreter, name: str = "model") -> ClassifierSignature:
    """Check that ``interpreter`` runs an image classifier and describe its tensors.

    Expected: exactly one input ``[1, H, W, C]`` with C in (1, 3) of dtype
    float32/uint8/int8, and one or more outputs ``[1, N]`` or ``[N]`` of dtype
    float32/uint8/int8.

    Args:
        interpreter: a LiteRT interpreter with tensors allocated.
        name: the model's name for messages.

    Returns:
        Its input and score outputs.

    Raises:
        ModelFileError: anything else, stating what was found and what is expected.
    """
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    expected_in = "one image input of shape [1, height, width, 1 or 3] (float32, uint8 or int8)"
    expected_out = "one score output of shape [1, N] or [N] (float32, uint8 or int8), or several (multi-head)"
    if len(inputs) != 1:
        raise ModelFileError(f"{name}: not an image classifier: it has {len(inputs)} inputs, "
                             f"expected {expected_in}")
    if not outputs:
        raise ModelFileError(f"{name}: not an image classifier: it has no outputs, expected {expected_out}")
    inp = _spec(ImageInputSpec, inputs[0])
    shape_ok = len(inp.shape) == 4 and inp.shape[0] == 1 and inp.shape[3] in (1, 3) and min(inp.shape) > 0
    if not shape_ok or inp.dtype not in _INPUT_DTYPES:
        raise ModelFileError(f"{name}: not an image classifier: input is {inp.dtype.name} "
                             f"{list(inp.shape)}, expected {expected_in}")
    if len(inputs[0]["quantization_parameters"]["scales"]) > 1:
        raise ModelFileError(f"{name}: per-channel quantized input is not supported, expected "
                             f"{expected_in} with one scale and zero point")
    heads = []
    for detail in outputs:  # several [1, N] outputs: a multi-head classifier
        out = _spec(ScoresOutputSpec, detail)
        out_ok = (len(out.shape) == 1 or (len(out.shape) == 2 and out.shape[0] == 1)) and out.shape[-1] > 0
        if not out_ok or out.dtype not in _OUTPUT_DTYPES:
            which = "output" if len(outputs) == 1 else f"output {len(heads)}"
            raise ModelFileError(f"{name}: not an image classifier: {which} is {out.dtype.name} "
                                 f"{list(out.shape)}, expected {expected_out}")
        heads.append(out)
    return ClassifierSignature(input=inp, output=heads[0], outputs=tuple(heads))  # type: ignore[arg-type]


#: How far from 1 the scores of a probe may sum and still count as probabilities.
_PROBABILITY_TOLERANCE = 0.02


def check_scores(interpreter: Interpreter, signature: ClassifierSignature, name: str = "model",
                 labelled: bool = True) -> None:
    """Run two probe images and check that the output can be class scores.

    Any non-finite output (NaN or infinity for a plain input) means corrupt
    weights: refused. A model without labels must also look like a
    classifier: the rule is that an output whose values are all >= 0 on both
    probes (a mid-grey and a seeded noise image) and that does not sum to 1
    (within 0.02, or half a quantization step per class) is neither
    probabilities nor logits (logits go negative) but pooled features after
    a ReLU, as a feature extractor outputs; it is refused with a pointer to
    the image embedder rather than softmaxed into meaningless "classes".
    Passing labels overrides the rule. Raises :class:`ModelFileError`.
    """
    spec, out = signature.input, signature.output
    rng = np.random.default_rng(0)
    if spec.dtype == np.float32:
        probes = [np.zeros(spec.shape, np.float32), rng.uniform(-1, 1, spec.shape).astype(np.float32)]
    else:
        info = np.iinfo(spec.dtype)
        mid = (int(info.min) + int(info.max) + 1) // 2
        probes = [np.full(spec.shape, mid, spec.dtype),
                  rng.integers(info.min, int(info.max) + 1, spec.shape).astype(spec.dtype)]
    outputs = []
    try:
        for probe in probes:
            interpreter.set_tensor(spec.index, probe)
            interpreter.invoke()
            raw = interpreter.get_tensor(out.index).reshape(-1).astype(np.float64)
            outputs.append((raw - out.zero_point) * out.scale if out.quantized else raw)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise ModelFileError(f"{name}: the model fails a trial run: {one_line(exc)}") from None
    for values in outputs:
        if not np.all(np.isfinite(values)):
            raise ModelFileError(f"{name}: the model outputs NaN or infinity for a plain image "
                                 f"(corrupt weights?)")
    if labelled:
        return
    tolerance = _PROBABILITY_TOLERANCE + (out.num_classes * out.scale / 2 if out.quantized else 0.0)
    non_negative = all(np.all(v >= 0) for v in outputs)
    probabilities = all(abs(v.sum() - 1.0) <= tolerance for v in outputs)
    if non_negative and not probabilities:
        raise ModelFileError(
            f"{name}: this looks like a feature extractor, not a classifier: its {out.num_classes} "
            f"outputs are all >= 0 but do not sum to 1 (not probabilities), and there are no labels; "
            f"embed images with it instead (litecls.tasks.ImageEmbedder, litecls embed); if it really "
            f"is a classifier, pass its labels")
