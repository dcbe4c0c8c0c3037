"""``litecls benchmark`` and the op-delegation analysis on real zoo models (issue #5).

No timing thresholds: the checks are on structure and internal consistency
(every field present, positive latencies, ordered percentiles), which hold
however loaded the machine is.
"""

from __future__ import annotations

import json
import mmap
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from litecls.cli.main import main
from litecls.errors import ModelFileError
from litecls.evaluation.benchmark import benchmark_model, parse_threads
from litecls.evaluation.machine import machine_info, peak_rss_mb, reset_peak_rss
from litecls.evaluation.ops import delegation_of, profile_ops
from litecls.evaluation.stats import summarize
from litecls.export.flatbuffer import read, write
from litecls.metadata import strip_metadata
from litecls.models.zoo import DEFAULT_MODEL
from litecls.samples import labelled_imagenet_photos

ZooModel = Callable[[str, str], Path]
STAT_FIELDS = {"runs", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms",
               "throughput_per_s"}


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_stats(stats: dict, runs: int) -> None:
    assert set(stats) == STAT_FIELDS
    assert stats["runs"] == runs
    assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"] and stats["std_ms"] >= 0
    assert stats["throughput_per_s"] == pytest.approx(1000 / stats["mean_ms"], rel=1e-3)


@pytest.fixture(scope="module")
def int8_model(zoo_model: ZooModel) -> Path:
    return zoo_model(DEFAULT_MODEL, "int8")


@pytest.mark.core
@pytest.mark.zoo
def test_benchmark_json_has_every_field(int8_model: Path):
    photos = [p for p, _ in labelled_imagenet_photos()[:2]]
    # A fresh process: in this long-lived one, memory freed by earlier tests can hold the model
    # without the resident size growing, and the model's memory figure would mean nothing.
    args = ["benchmark", str(int8_model), "--threads", "1,2", "--runs", "4", "--warmup", "2",
            "--end-to-end", *map(str, photos), "--json"]
    done = subprocess.run([sys.executable, "-m", "litecls.cli.main", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == str(int8_model)
    assert data["file_size_bytes"] == int8_model.stat().st_size
    assert data["input"]["dtype"] == "uint8" and data["input"]["shape"] == [1, 224, 224, 3]
    assert data["output"]["shape"] == [1, 1000]
    assert (data["warmup_runs"], data["runs"], data["end_to_end_images"]) == (2, 4, 2)
    assert [r["threads"] for r in data["results"]] == [1, 2]
    for result in data["results"]:
        assert result["init_ms"] > 0 and result["first_inference_ms"] > 0
        check_stats(result["warmup"], 2)
        check_stats(result["latency"], 4)
        check_stats(result["end_to_end"], 4)
        # Each end-to-end run contains its invoke, so the medians are ordered too.
        assert 0 < result["end_to_end_invoke_p50_ms"] <= result["end_to_end"]["p50_ms"]
    memory = data["memory"]
    assert memory["peak_rss_mb"] > 0 and memory["rss_before_mb"] > 0
    if memory["peak_includes_earlier_work"]:  # the peak could not be reset: no model figure
        assert memory["model_mb"] is None
    else:
        growth = memory["peak_rss_mb"] - memory["rss_before_mb"]
        assert memory["model_mb"] == pytest.approx(max(0.0, growth), abs=0.2)
        # The file's pages and the tensor arena are new to the process.
        assert memory["model_mb"] > 1
    delegation = data["delegation"]
    assert delegation["xnnpack_subgraphs"] >= 1 and delegation["ops"] > 50
    machine = data["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1 and isinstance(machine["simd"], list)
    assert data["ops"] is None


@pytest.mark.core
@pytest.mark.zoo
def test_thread_sweep_runs_every_count(int8_model: Path):
    result = benchmark_model(int8_model, threads="1,2,4", warmup=1, runs=3)
    assert [r.threads for r in result.results] == [1, 2, 4]
    assert all(r.latency.runs == 3 and r.latency.min_ms > 0 for r in result.results)
    assert result.for_threads(4).latency.p50_ms > 0
    if machine_info().usable_cores < 4:
        assert any("oversubscription" in note for note in result.notes)


@pytest.mark.core
@pytest.mark.zoo
def test_human_output_names_machine_and_figures(capsys, zoo_model: ZooModel):
    path = zoo_model("mobilenet_v2", "float32")
    code, out, _err = run_cli(capsys, "benchmark", path, "--runs", 3, "--warmup", 1)
    assert code == 0
    number = r"[\d.]+"
    assert re.search(rf"invoke +p50 {number} ms \(mean {number} ± {number}, min {number}, "
                     rf"p90 {number}, p99 {number}\)", out)
    assert "machine: " in out and "cores" in out and "file size: 14." in out
    assert "all ops delegated" in out


# -- delegation and the per-op profile -----------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
@pytest.mark.parametrize("precision", ["float32", "dynamic", "int8"])
def test_delegation_agrees_with_litert(zoo_model: ZooModel, precision: str):
    """Our reading of the graph must match LiteRT's own verdict on full acceleration."""
    from ai_edge_litert.compiled_model import CompiledModel

    path = zoo_model(DEFAULT_MODEL, precision)
    report = delegation_of(path)
    compiled = CompiledModel.from_file(str(path))  # no context manager before ai-edge-litert 2
    if hasattr(compiled, "is_fully_accelerated"):  # LiteRT's verdict: ai-edge-litert 2.x (not 1.4)
        assert report.fully_delegated == compiled.is_fully_accelerated()
    del compiled
    if precision == "float32":
        assert report.fully_delegated and report.partitions == 1
    if precision == "dynamic":  # hybrid int8-weight ops: XNNPACK takes only some of them
        assert not report.fully_delegated and report.partitions > 1 and report.not_delegated
    for op in report.ops:
        assert op.delegated == (op.partition is not None)


@pytest.mark.zoo
def test_ops_profile_times_every_op(capsys, int8_model: Path):
    code, out, _err = run_cli(capsys, "benchmark", int8_model, "--runs", 3, "--warmup", 1, "--ops", "--json")
    assert code == 0
    ops = json.loads(out)["ops"]
    assert len(ops["ops"]) > 50 and ops["whole_model_ms"] > 0
    assert all(op["ms"] is not None and op["ms"] >= 0 for op in ops["ops"])
    # Only ops computed from constants (int8 weights DEQUANTIZE'd for the float classifier
    # layer) count 0 ms, and the notes say so.
    folded = [f"{op['op']}#{op['index']}" for op in ops["ops"] if op["ms"] == 0]
    assert folded == [n.split(":")[0] for n in ops["notes"] if "constant inputs only" in n]
    assert all(name.startswith("DEQUANTIZE#") for name in folded)
    assert ops["not_delegated"] == [f"{op['op']}#{op['index']}" for op in ops["ops"] if not op["delegated"]]
    assert sum(ops["op_counts"].values()) == len(ops["ops"]) and ops["op_counts"]["CONV_2D"] > 30
    # Ops run alone get the same kernels as in the model: XNNPACK exactly for the delegated ones.
    assert all(op["isolated_delegated"] == op["delegated"] for op in ops["ops"])


@pytest.mark.zoo
def test_a_non_delegated_op_is_found_and_timed(zoo_model: ZooModel):
    """A hybrid (dynamic-range) model keeps float ops outside XNNPACK; the profile names them."""
    report = profile_ops(zoo_model("mobilenet_v2", "dynamic"), warmup=1, runs=3)
    outside = report.not_delegated
    assert outside and all(op.ms is not None and op.ms > 0 for op in outside)
    assert {op.op for op in outside} <= {op.op for op in report.ops}


@pytest.mark.zoo
def test_int8_export_runs_entirely_in_xnnpack(zoo_model: ZooModel):
    """The uint8 I/O bridge of the int8 export is delegable: one XNNPACK subgraph, nothing outside.

    Quantized here (2 calibration photos, a few seconds) rather than read from
    the test cache, which may hold files built before the export changed.
    """
    from ai_edge_litert.interpreter import Interpreter

    from litecls.export import quantize
    from litecls.models import get_config
    from litecls.models.zoo import calibration_images, zoo_spec

    config = get_config("mobilenet_v2")
    base = strip_metadata(zoo_model("mobilenet_v2", "float32").read_bytes())
    model = quantize.quantize_int8(base, zoo_spec(config), calibration_images(config)[:2])
    report = delegation_of(model)
    assert report.fully_delegated and report.partitions == 1 and not report.not_delegated
    interpreter = Interpreter(model_content=model)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and out["dtype"] == np.uint8
    assert inp["quantization"] == (1.0, 0) and out["quantization"] == (1 / 256, 0)


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
def test_bad_thread_counts_are_clear_errors(capsys, int8_model: Path):
    for text in ("0", "1,0", "two", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            main(["benchmark", str(int8_model), "--threads", text])
        assert exit_info.value.code == 2
        assert "thread counts must be positive integers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="positive integers"):
        benchmark_model(int8_model, threads=[0])
    with pytest.raises(ValueError, match="runs must be 1 or more"):
        benchmark_model(int8_model, runs=0)
    assert parse_threads("1, 2,2,4") == [1, 2, 4]


@pytest.mark.core
def test_non_tflite_file_is_a_clear_error(capsys, tmp_path: Path):
    photo = labelled_imagenet_photos()[0][0]
    code, _out, err = run_cli(capsys, "benchmark", photo)
    assert code == 2 and "not a TFLite model" in err and "JPEG" in err
    with pytest.raises(ModelFileError, match="no such model file"):
        benchmark_model(tmp_path / "missing.tflite")


@pytest.mark.zoo
def test_a_model_that_cannot_allocate_is_a_clear_error(capsys, tmp_path: Path, int8_model: Path):
    model = read(strip_metadata(int8_model.read_bytes()))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shape = np.array([1, 224, 224, 4], dtype=np.int32)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(write(model))
    code, _out, err = run_cli(capsys, "benchmark", broken)
    assert code == 2 and "cannot be allocated" in err


@pytest.mark.core
@pytest.mark.zoo
def test_end_to_end_without_images_is_an_error(capsys, tmp_path: Path, int8_model: Path):
    code, _out, err = run_cli(capsys, "benchmark", int8_model, "--end-to-end", tmp_path)
    assert code == 2 and "no images" in err


# -- building blocks ---------------------------------------------------------------------------------


@pytest.mark.core
def test_summarize_matches_hand_computed_percentiles():
    stats = summarize([float(v) for v in range(1, 101)])
    assert (stats.min_ms, stats.max_ms, stats.mean_ms) == (1.0, 100.0, 50.5)
    # Linear interpolation at rank q * (n - 1): 50.5, 90.1, 99.01.
    assert stats.p50_ms == pytest.approx(50.5) and stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.std_ms == pytest.approx(28.866, abs=1e-3)
    with pytest.raises(ValueError):
        summarize([])


@pytest.mark.core
def test_machine_info_reads_cpuinfo():
    info = machine_info()
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.partition(":")[2].split())
                break
    assert set(info.simd) <= flags or not cpuinfo.exists()
    assert ("avx2" in info.simd) == ("avx2" in flags)
    assert info.usable_cores <= info.logical_cores


@pytest.mark.core
def test_peak_memory_reset_sees_a_new_allocation():
    if not reset_peak_rss():
        pytest.skip("peak RSS cannot be reset on this system")
    before = peak_rss_mb()
    # A fresh anonymous mapping, so the pages are new to the process (a numpy array could reuse
    # heap pages that earlier tests left resident).
    block = mmap.mmap(-1, 40 * 2**20)
    block.write(b"\x01" * len(block))
    after = peak_rss_mb()
    block.close()
    assert after - before >= 35
