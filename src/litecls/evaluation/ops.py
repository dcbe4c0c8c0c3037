"""Which ops of a .tflite run in XNNPACK, which fall back to LiteRT's own kernels, and what each costs.

LiteRT's Python API has no op profiler (``benchmark_model --enable_op_profiling``
is C++ only) and does not expose the execution plan. What it does expose,
after ``allocate_tensors()``, is every node of the graph: the model's original
ops *and* the ``DELEGATE`` nodes XNNPACK replaced groups of them with. A
delegate node's inputs and outputs are the boundary tensors of the ops it
swallowed, so walking back from its outputs to its inputs recovers exactly
those ops; every other op is run by the interpreter itself (not delegated).
LiteRT's own verdict (``CompiledModel.is_fully_accelerated``) agrees with
this on every zoo file.

Per-op time: each op is cut out into a one-op model (same tensors, weights
and quantization) and timed on its own, with XNNPACK when the op was
delegated in the full graph and with the built-in kernels otherwise, so it
runs the kernel it runs in the full graph. Isolated ops miss cache reuse and
fusion between neighbours; the sum is therefore compared with the whole
model's latency in the report. Ops whose inputs are all constant (the
DEQUANTIZE of int8 weights in front of a float layer) are computed once when
the model loads: they count 0 ms, and the layer they feed is timed with
them, so that its weights are static as in the full graph.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from litecls.runtime.interpreter import interpreter_from_bytes, read_model_bytes

DELEGATE = "DELEGATE"


@dataclass
class OpInfo:
    """One op of the model: position, type, tensor types and whether XNNPACK runs it."""

    index: int
    op: str
    input_types: list[str]
    output_types: list[str]
    delegated: bool
    partition: int | None = None  #: index of the DELEGATE node that runs it
    ms: float | None = None  #: median time of the op run alone (``--ops`` timing)
    isolated_delegated: bool | None = None  #: whether the one-op model was delegated too


@dataclass
class DelegationReport:
    """The ops of one model and how they are executed.

    Attributes:
        model: the file or name described.
        num_threads: interpreter threads.
        ops: every op, in execution order, with its delegation.
        partitions: number of DELEGATE nodes (XNNPACK subgraphs).
        whole_model_ms: median time of the whole model, when profiled.
        notes: caveats worth printing.
    """

    model: str
    num_threads: int
    ops: list[OpInfo]
    partitions: int  #: number of DELEGATE nodes (XNNPACK subgraphs)
    whole_model_ms: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def not_delegated(self) -> list[OpInfo]:
        """Ops the interpreter runs with its built-in kernels."""
        return [op for op in self.ops if not op.delegated]

    @property
    def fully_delegated(self) -> bool:
        """True when XNNPACK runs every op in one subgraph."""
        return not self.not_delegated and self.partitions == 1

    def to_dict(self) -> dict:
        """A JSON-ready dict, with a summary of the ops not delegated.

        Returns:
            Plain types only.
        """
        data = asdict(self)
        data["fully_delegated"] = self.fully_delegated
        data["not_delegated"] = [f"{op.op}#{op.index}" for op in self.not_delegated]
        data["op_counts"] = dict(Counter(op.op for op in self.ops))
        return data


def _dtype_name(dtype: object) -> str:
    return np.dtype(dtype).name


def analyse_delegation(interpreter: Interpreter, name: str = "model",
                       num_threads: int = 1) -> DelegationReport:
    """Split the ops of an allocated interpreter into delegated and not delegated (see module doc)."""
    nodes = interpreter._get_ops_details()  # experimental API; the only view of delegate nodes
    ops = [n for n in nodes if n["op_name"] != DELEGATE]
    delegates = [n for n in nodes if n["op_name"] == DELEGATE]
    producer = {}
    for node in ops:
        for tensor in node["outputs"]:
            producer[int(tensor)] = node
    owner: dict[int, int] = {}
    for delegate in delegates:
        boundary = {int(t) for t in delegate["inputs"]}
        stack = [int(t) for t in delegate["outputs"]]
        seen: set[int] = set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary or tensor not in producer:
                continue
            seen.add(tensor)
            node = producer[tensor]
            owner[int(node["index"])] = int(delegate["index"])
            stack.extend(int(t) for t in node["inputs"] if int(t) >= 0)
    infos = [OpInfo(index=int(n["index"]), op=str(n["op_name"]),
                    input_types=[_dtype_name(t) for t in n["operand_types"]],
                    output_types=[_dtype_name(t) for t in n["result_types"]],
                    delegated=int(n["index"]) in owner, partition=owner.get(int(n["index"])))
             for n in ops]
    return DelegationReport(model=name, num_threads=num_threads, ops=infos, partitions=len(delegates))


def delegation_of(model: str | os.PathLike | bytes, num_threads: int = 1) -> DelegationReport:
    """:func:`analyse_delegation` for a model file or bytes (XNNPACK applied as LiteRT does by default).

    Args:
        model: a .tflite path or its bytes.
        num_threads: interpreter threads.

    Returns:
        Which ops XNNPACK runs and which LiteRT's own kernels run.

    Raises:
        ModelFileError: the model cannot be loaded.
    """
    data, name = read_model_bytes(model)
    interpreter = interpreter_from_bytes(data, name, num_threads)
    return analyse_delegation(interpreter, name, num_threads)


# -- one-op models ---------------------------------------------------------------------------------


def _is_constant(model, index: int) -> bool:
    """Whether tensor ``index`` of subgraph 0 holds data in the file (weights, biases, shapes)."""
    buffer = model.buffers[model.subgraphs[0].tensors[index].buffer]
    return buffer.data is not None and len(buffer.data) > 0


def _constant_only(model, op) -> bool:
    """Whether every input of ``op`` is constant: the runtime computes it once, at load."""
    inputs = [int(i) for i in op.inputs if int(i) >= 0]
    return bool(inputs) and all(_is_constant(model, i) for i in inputs)


def _single_op_model(model, op_position: int) -> bytes:
    """A model holding only op ``op_position`` of subgraph 0, its tensors and constant buffers.

    Constant inputs (weights, biases, shapes) keep their data; an input made
    from constants alone (int8 weights through DEQUANTIZE) comes with the op
    that makes it; every other input becomes a graph input, the op's outputs
    the graph outputs.
    """
    from ai_edge_litert import schema_py_generated as schema

    from litecls.runtime.flatbuffer import write_model

    graph = model.subgraphs[0]
    op = graph.operators[op_position]
    producers = {int(out): producer for producer in graph.operators for out in producer.outputs}
    sub = schema.SubGraphT()
    sub.tensors, sub.inputs, sub.operators = [], [], []
    buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
    taken: dict[int, int] = {}

    def copy_op(source, inputs: list[int], outputs: list[int]):
        new_op = schema.OperatorT()
        vars(new_op).update(vars(source))
        new_op.inputs, new_op.outputs, new_op.intermediates = inputs, outputs, None
        return new_op

    def take(index: int, is_input: bool) -> int:
        if index < 0:  # optional input left out
            return index
        if index in taken:
            return taken[index]
        tensor = graph.tensors[index]
        copy = schema.TensorT()
        vars(copy).update(vars(tensor))
        constant = _is_constant(model, index)
        buffers.append(model.buffers[tensor.buffer] if constant else schema.BufferT())
        copy.buffer = len(buffers) - 1
        sub.tensors.append(copy)
        position = taken[index] = len(sub.tensors) - 1
        maker = producers.get(index)
        if is_input and not constant and maker is not None and _constant_only(model, maker):
            sub.operators.append(copy_op(maker, [take(int(i), True) for i in maker.inputs], [position]))
        elif is_input and not constant:
            sub.inputs.append(position)
        return position

    inputs = [take(int(i), True) for i in op.inputs]
    outputs = [take(int(o), False) for o in op.outputs]
    sub.operators.append(copy_op(op, inputs, outputs))
    sub.outputs = outputs
    out = schema.ModelT()
    out.version = model.version
    out.operatorCodes = model.operatorCodes
    out.subgraphs = [sub]
    out.buffers = buffers
    out.description = b"litecls one-op profile model"
    return write_model(out)


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    low, high = max(info.min, -128), min(info.max, 255)
    return rng.integers(low, high + 1, size=shape).astype(dtype)


def _time_interpreter(interpreter: Interpreter, warmup: int, runs: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _random_input(detail, rng))
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def profile_ops(model: str | os.PathLike | bytes, num_threads: int = 1, warmup: int = 3,
                runs: int = 20) -> DelegationReport:
    """Delegation of every op plus its median time run alone, and the whole model's median time.

    See the module docstring for how ops are cut out and which kernels they get.

    Args:
        model: a .tflite path or its bytes.
        num_threads: interpreter threads.
        warmup: untimed runs of each op.
        runs: timed runs of each op.

    Returns:
        The delegation report with each op's time filled in.

    Raises:
        ModelFileError: the model cannot be loaded.
    """
    from litecls.runtime.flatbuffer import read_model

    data, name = read_model_bytes(model)
    whole = interpreter_from_bytes(data, name, num_threads)
    report = analyse_delegation(whole, name, num_threads)
    report.whole_model_ms = _time_interpreter(whole, warmup, runs)
    del whole
    parsed = read_model(data)
    # Interpreter node indices follow the order of subgraph 0's operators.
    for info in report.ops:
        if _constant_only(parsed, parsed.subgraphs[0].operators[info.index]):
            info.ms, info.isolated_delegated = 0.0, info.delegated
            report.notes.append(f"{info.op}#{info.index}: constant inputs only, computed once at load")
            continue
        try:
            one_op = _single_op_model(parsed, info.index)
            resolver = OpResolverType.AUTO if info.delegated else \
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            interpreter = Interpreter(model_content=one_op, num_threads=num_threads,
                                      experimental_op_resolver_type=resolver)
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            report.notes.append(f"{info.op}#{info.index}: cannot run alone ({exc}); not timed")
            continue
        info.isolated_delegated = any(n["op_name"] == DELEGATE for n in interpreter._get_ops_details())
        if info.delegated and not info.isolated_delegated:
            report.notes.append(f"{info.op}#{info.index}: delegated in the model but not on its own; "
                                "timed with the built-in kernel")
        info.ms = _time_interpreter(interpreter, warmup, runs)
    return report


def format_profile(report: DelegationReport, top: int = 15) -> str:
    """Human-readable summary: ops not delegated, time per op type, the slowest ops."""
    lines = [f"{report.model}: {len(report.ops)} ops, {report.partitions} XNNPACK subgraph(s), "
             f"{len(report.not_delegated)} op(s) not delegated "
             f"({'fully delegated' if report.fully_delegated else 'NOT fully delegated'})"]
    for op in report.not_delegated:
        timing = f"  {op.ms:.3f} ms alone" if op.ms is not None else ""
        lines.append(f"  not delegated: {op.op}#{op.index} "
                     f"({', '.join(op.input_types)} -> {', '.join(op.output_types)}){timing}")
    timed = [op for op in report.ops if op.ms is not None]
    if timed:
        total = sum(op.ms for op in timed)  # type: ignore[misc]
        lines.append(f"sum of ops run alone: {total:.2f} ms; whole model: {report.whole_model_ms:.2f} ms "
                     f"({report.num_threads} thread(s), medians)")
        by_type: dict[tuple[str, bool], list[float]] = {}
        for op in timed:
            by_type.setdefault((op.op, op.delegated), []).append(op.ms)  # type: ignore[arg-type]
        lines.append(f"  {'op type':<22} {'where':<9} {'count':>5} {'ms':>8} {'%':>6}")
        for (kind, delegated), times in sorted(by_type.items(), key=lambda kv: -sum(kv[1])):
            lines.append(f"  {kind:<22} {'XNNPACK' if delegated else 'builtin':<9} {len(times):>5} "
                         f"{sum(times):>8.3f} {100 * sum(times) / total:>5.1f}%")
        lines.append(f"slowest {min(top, len(timed))} ops:")
        for op in sorted(timed, key=lambda o: -(o.ms or 0))[:top]:
            lines.append(f"  {op.op + '#' + str(op.index):<24} {'XNNPACK' if op.delegated else 'builtin':<8} "
                         f"{op.ms:8.3f} ms  {', '.join(op.input_types)} -> {', '.join(op.output_types)}")
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)
