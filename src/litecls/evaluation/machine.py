"""The machine the figures come from: CPU, cores, SIMD features, memory, and its float32 peak.

Latency means nothing without the machine, so every benchmark carries a
:class:`MachineInfo`. The SIMD flags listed are the ones that decide which
XNNPACK kernels run: FMA/AVX2 for float32, VNNI (``avx512_vnni``,
``avx_vnni``) or ARM ``asimddp``/``i8mm`` for fast int8 dot products.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

#: Flags worth showing, in this order, when /proc/cpuinfo lists them.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_int8", "asimd", "asimddp", "i8mm", "sve", "bf16")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass
class MachineInfo:
    """What the benchmark ran on.

    Attributes:
        cpu_model: the CPU's name.
        logical_cores: logical cores of the machine.
        usable_cores: cores this process may run on (affinity / container limit).
        simd: SIMD extensions present (AVX2, AVX-512, NEON...).
        int8_dot_product: VNNI or ARM dot-product instructions present.
        memory_gb: physical memory, if known.
        platform: the OS and architecture.
        python: Python's version.
        litert: ai-edge-litert's version.
    """

    cpu_model: str
    logical_cores: int
    usable_cores: int  #: cores this process may run on (affinity / container limit)
    simd: list[str]
    int8_dot_product: bool  #: VNNI or ARM dot-product instructions present
    memory_gb: float | None
    platform: str
    python: str
    litert: str

    def summary(self) -> str:
        """One line for reports.

        Returns:
            CPU, cores, SIMD, LiteRT and Python versions.
        """
        dot = "int8 dot-product instructions" if self.int8_dot_product else "no int8 dot-product (VNNI)"
        return (f"{self.cpu_model}, {self.usable_cores} usable of {self.logical_cores} logical cores, "
                f"SIMD: {' '.join(self.simd) or '-'} ({dot}); LiteRT {self.litert}, Python {self.python}")

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns:
            The fields by name.
        """
        return asdict(self)


def _cpuinfo() -> dict[str, str]:
    """First processor's fields from /proc/cpuinfo (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _memory_gb() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"MemTotal:\s+(\d+) kB", text)
    return round(int(match.group(1)) / 1024**2, 1) if match else None


def usable_cores() -> int:
    """Cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def machine_info() -> MachineInfo:
    """Describe this machine from /proc/cpuinfo and the platform module.

    Returns:
        The machine's description.
    """
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    model = info.get("model name") or info.get("Model") or info.get("Hardware") or platform.processor() \
        or platform.machine()
    try:
        litert = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        litert = "?"
    return MachineInfo(cpu_model=model, logical_cores=os.cpu_count() or 1, usable_cores=usable_cores(),
                       simd=[f for f in SIMD_FLAGS if f in flags],
                       int8_dot_product=any(f in flags for f in INT8_DOT_FLAGS),
                       memory_gb=_memory_gb(), platform=platform.platform(),
                       python=platform.python_version(), litert=litert)


# -- resident memory ---------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_mb() -> float | None:
    """Current resident memory of this process in MB, or ``None`` off Linux."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (since start, or since :func:`reset_peak_rss`)."""
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the lifetime peak from getrusage (kB on Linux/BSD, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024**2 if sys.platform == "darwin" else peak / 1024
    return kb / 1024


def reset_peak_rss() -> bool:
    """Restart the peak-memory count at the current RSS (Linux ``clear_refs``); False if unsupported.

    Without this the peak would include whatever the process did before
    (importing torch for a report, an earlier benchmark).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")
    except OSError:
        return False
    return True


# -- the machine's float32 limit ---------------------------------------------------------------

_PEAK_SCRIPT = """
import json, sys, time
import numpy as np
n = int(sys.argv[1])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
print(json.dumps({"gflops": 2 * n**3 / best / 1e9, "seconds": best}))
"""


def measure_peak_gflops(threads: int = 1, size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an ``size`` x ``size`` numpy matmul on ``threads`` threads.

    A tuned BLAS matmul is the practical ceiling of a CPU for float32
    multiply-adds; a conv net cannot beat it. It runs in a child process
    because BLAS reads its thread count only at import. Best of ``repeats``
    (the least disturbed run), since the question is what the chip can do.

    Args:
        threads: BLAS threads.
        size: the matrices' side.
        repeats: timed runs.

    Returns:
        GFLOP/s of the best run.

    Raises:
        ValueError: ``threads`` below 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be positive, got {threads}")
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(size), str(repeats)], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["gflops"])
