"""GPTQ weight rounding before int8 quantization (Frantar et al., 2022).

Rounding every weight to its nearest int8 level, as the quantizer does,
ignores that a layer's rounding errors add up in its output. GPTQ rounds a
layer's input channels one at a time and moves each rounding error onto the
channels not rounded yet, weighted by how the layer's inputs co-vary on
representative photos (the Hessian ``X^T X`` of its inputs), so the layer's
output moves as little as possible.

It rewrites a float32 .tflite: every CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED with constant float weights gets weights that lie exactly on
the symmetric per-output-channel int8 grid the quantizer uses afterwards
(``scale = max|w| / 127``), so quantizing them again loses nothing more.
docs/decisions.md ("The int8 recipe") has what it was measured to give.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from litecls.export import flatbuffer
from litecls.export.quantize import WEIGHT_LEVELS

_OPS = flatbuffer.schema.BuiltinOperator
_KINDS = {_OPS.CONV_2D: "conv", _OPS.DEPTHWISE_CONV_2D: "depthwise", _OPS.FULLY_CONNECTED: "dense"}
_DAMPING = 0.01  # of the mean Hessian diagonal, for a stable inverse (the paper's value)


@dataclass(frozen=True)
class RoundingReport:
    """What :func:`round_weights` did: layers rounded and their summed output error."""

    model: bytes
    layers: int
    #: Sum over layers of ``tr((W - Q) H (W - Q)^T)``: rounding to nearest vs GPTQ.
    nearest_error: float
    gptq_error: float
    #: Output channels left at round-to-nearest (their largest weight moved off the grid's end).
    fallback_rows: int


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Layer:
    """One layer's weights as a (rows, columns) matrix and its input Hessian."""

    def __init__(self, model, op, kind: str) -> None:
        graph = model.subgraphs[0]
        self.kind, self.input = kind, op.inputs[0]
        weights = graph.tensors[op.inputs[1]]
        self.buffer = model.buffers[weights.buffer]
        self.shape = tuple(weights.shape)
        w = np.frombuffer(bytes(self.buffer.data), np.float32).reshape(self.shape).astype(np.float64)
        if kind == "dense":  # (out, in)
            self.matrix = w
        elif kind == "conv":  # (out, kh, kw, in) -> rows: out; columns: in, kh, kw (unfold's order)
            self.matrix = w.transpose(0, 3, 1, 2).reshape(self.shape[0], -1)
        else:  # depthwise (1, kh, kw, channels): one row and one Hessian per channel
            self.matrix = w[0].reshape(-1, self.shape[3]).T
        if kind != "dense":
            options = op.builtinOptions
            self.kernel = self.shape[1:3]
            self.stride = (options.strideH, options.strideW)
            self.dilation = (options.dilationHFactor, options.dilationWFactor)
            self.same = options.padding == flatbuffer.schema.Padding.SAME
        columns = self.matrix.shape[1]
        groups = self.matrix.shape[0] if kind == "depthwise" else 1
        self.hessian = np.zeros((groups, columns, columns))

    def _patches(self, x: np.ndarray) -> torch.Tensor:
        """(channels * kh * kw, positions) input patches of an NHWC batch."""
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).double()
        if self.same:
            (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
            top, bottom = _same_padding(t.shape[2], kh, sh, dh)
            left, right = _same_padding(t.shape[3], kw, sw, dw)
            t = F.pad(t, (left, right, top, bottom))
        patches = F.unfold(t, self.kernel, dilation=self.dilation, stride=self.stride)
        return patches.permute(1, 0, 2).reshape(patches.shape[1], -1)

    def observe(self, x: np.ndarray) -> None:
        """Add one batch of this layer's inputs to its Hessian."""
        if self.kind == "dense":
            rows = torch.from_numpy(x.reshape(-1, self.matrix.shape[1])).double()
            self.hessian[0] += (rows.T @ rows).numpy()
        elif self.kind == "conv":
            p = self._patches(x)
            self.hessian[0] += (p @ p.T).numpy()
        else:
            p = self._patches(x).reshape(self.hessian.shape[0], self.hessian.shape[1], -1)
            self.hessian += torch.einsum("cdl,cel->cde", p, p).numpy()

    def store(self, matrix: np.ndarray) -> None:
        """Write ``matrix`` back into the model's weight buffer, in the tensor's layout."""
        if self.kind == "dense":
            w = matrix
        elif self.kind == "conv":
            out, kh, kw, cin = self.shape
            w = matrix.reshape(out, cin, kh, kw).transpose(0, 2, 3, 1)
        else:
            w = matrix.T.reshape(self.shape)
        self.buffer.data = np.frombuffer(np.ascontiguousarray(w, np.float32).tobytes(), np.uint8)


def _scales(w: np.ndarray) -> np.ndarray:
    scale = np.abs(w).max(axis=1) / WEIGHT_LEVELS
    scale[scale == 0] = 1.0
    return scale


def round_to_nearest(w: np.ndarray) -> np.ndarray:
    """Each row of ``w`` on its symmetric int8 grid, rounded to nearest (what the quantizer does)."""
    scale = _scales(w)[:, None]
    return np.clip(np.round(w / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS) * scale


def gptq_round(w: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """GPTQ rounding of ``w`` (rows x columns) on each row's int8 grid.

    ``hessian``: (1, columns, columns) shared by all rows, or one per row.
    Columns are visited in order of decreasing Hessian diagonal ("act order")
    when the Hessian is shared.
    """
    rows, columns = w.shape
    scale = _scales(w)
    h = hessian.copy()
    diagonal = np.einsum("gdd->gd", h)
    for g in range(len(h)):  # inputs that never fire: any value is as good, keep H invertible
        dead = np.flatnonzero(diagonal[g] == 0)
        h[g, dead, dead] = 1.0
    w = w.copy()
    order = None
    if len(h) == 1:
        order = np.argsort(-np.einsum("gdd->gd", h)[0])
        w, h = w[:, order], h[:, order][:, :, order]
    h += _DAMPING * np.einsum("gdd->gd", h).mean(axis=1)[:, None, None] * np.eye(columns)
    # Upper Cholesky factor of H^-1: row j gives how column j's error spreads to later columns.
    upper = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)
    which = np.zeros(rows, int) if len(h) == 1 else np.arange(rows)
    q = np.zeros_like(w)
    for j in range(columns):
        q[:, j] = np.clip(np.round(w[:, j] / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS) * scale
        error = (w[:, j] - q[:, j]) / upper[which, j, j]
        w[:, j + 1:] -= error[:, None] * upper[which, j, j + 1:]
    if order is not None:
        q = q[:, np.argsort(order)]
    return q


def _output_error(w: np.ndarray, q: np.ndarray, hessian: np.ndarray) -> float:
    d = w - q
    if len(hessian) == 1:
        return float(np.einsum("rd,de,re->", d, hessian[0], d))
    return float(np.einsum("rd,rde,re->", d, hessian, d))


def _layers(model) -> list[_Layer]:
    graph = model.subgraphs[0]
    layers = []
    uses = Counter(graph.tensors[op.inputs[1]].buffer for op in graph.operators if len(op.inputs) > 1)
    for op in graph.operators:
        kind = _KINDS.get(flatbuffer.builtin(model, op))
        if kind is None:
            continue
        weights = graph.tensors[op.inputs[1]]
        data = model.buffers[weights.buffer].data
        if weights.type != flatbuffer.schema.TensorType.FLOAT32 or data is None or not len(data):
            continue  # weights computed at run time, or already quantized
        if uses[weights.buffer] > 1:
            continue  # shared by two ops: rounding tuned to one layer's inputs could hurt the other
        if kind == "depthwise" and op.builtinOptions.depthMultiplier not in (0, 1):
            continue
        layers.append(_Layer(model, op, kind))
    return layers


def round_weights(model_bytes: bytes, inputs: Iterable[np.ndarray]) -> RoundingReport:
    """GPTQ-round the weights of a float .tflite, with Hessians from ``inputs``.

    ``inputs``: float batches exactly as the model takes them (normalised NHWC).
    """
    from ai_edge_litert.interpreter import Interpreter

    model = flatbuffer.read(model_bytes)
    layers = _layers(model)
    with warnings.catch_warnings():
        # Every layer's input is read back, so every tensor must be kept; LiteRT warns that
        # this mode is meant for debugging.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
        interpreter = Interpreter(model_content=model_bytes, num_threads=2,
                                  experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    feed = interpreter.get_input_details()[0]["index"]
    for x in inputs:
        interpreter.set_tensor(feed, x)
        interpreter.invoke()
        for layer in layers:
            layer.observe(interpreter.get_tensor(layer.input))
    nearest_total = gptq_total = 0.0
    fallback = 0
    for layer in layers:
        nearest = round_to_nearest(layer.matrix)
        rounded = gptq_round(layer.matrix, layer.hessian)
        # A row whose largest weight did not land on level +-127 would get a new scale from the
        # quantizer, which would round it again; keep round-to-nearest there.
        moved = np.abs(rounded).max(axis=1) < np.abs(layer.matrix).max(axis=1) * (1 - 1e-6)
        rounded[moved] = nearest[moved]
        fallback += int(moved.sum())
        nearest_total += _output_error(layer.matrix, nearest, layer.hessian)
        gptq_total += _output_error(layer.matrix, rounded, layer.hessian)
        layer.store(rounded)
    return RoundingReport(flatbuffer.write(model), len(layers), nearest_total, gptq_total, fallback)
