"""CPU time per request of ``litecls serve`` against the naive app: event-loop thread and whole process.

    python benchmarks/serve_cpu.py                       # frames, c=8, 5 rounds x 2,000 requests
    python benchmarks/serve_cpu.py --concurrency 32 --workload photos --variants batch naive

On a shared machine wall-clock throughput moves with other processes' load; CPU time spent per
request by the server does much less. For each server (``serve_load.py``'s variants, all running
at once) a round sends ``--requests`` requests and reads, before and after, the event-loop
thread's run time (``/proc/PID/task/PID/schedstat``, nanoseconds: uvicorn runs the loop on the
main thread) and the process's user + system time (``/proc/PID/stat``, all threads: decoding and
inference included). Rounds alternate the servers; the report gives the median per request over
rounds, the throughput of each round's median, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import (
    NAMES,
    Process,
    frame_workload,
    load_level,
    photo_workload,
    serve_litecls,
    start_servers,
)

TICK = os.sysconf("SC_CLK_TCK")


def loop_seconds(pid: int) -> float:
    """Run time of the process's main thread (its event loop), seconds."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e9


def process_seconds(pid: int) -> float:
    """User + system time of every thread of the process so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def baseline_server(src: Path, model: Path, threads: int) -> Process:
    """The default service run from another source tree (its ``PYTHONPATH``)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(src.resolve())
    try:
        return serve_litecls(model, threads, [])
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0:int8", help="zoo reference or .tflite")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (all variants)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workload", choices=["frames", "photos"], default="frames")
    parser.add_argument("--variants", nargs="+", default=["batch", "naive"],
                        choices=[v for v in NAMES if v != "offline"])
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="also run the default service from this source tree (e.g. an older "
                             "commit's src/, from git archive), to compare code versions")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/litecls-throughput"))
    args = parser.parse_args(argv)
    from litecls.tasks.image_classifier import resolve_model

    model, _ = resolve_model(args.model)
    bodies = frame_workload(200) if args.workload == "frames" else photo_workload(args.folder, 200)
    servers: dict[str, Process] = {}
    if args.baseline:
        servers["baseline"] = baseline_server(args.baseline, model, args.threads)
    servers.update(start_servers(args.variants, model, args.threads))
    figures: dict[str, dict[str, list[float]]] = {v: {"loop": [], "process": [], "rate": []} for v in servers}
    try:
        for server in servers.values():
            asyncio.run(load_level(server.port, bodies, 16, 200))
        for _ in range(args.rounds):
            for variant, server in servers.items():
                pid = server.process.pid
                loop, process = loop_seconds(pid), process_seconds(pid)
                result = asyncio.run(load_level(server.port, bodies, args.concurrency, args.requests))
                done = result["ok"] or 1
                figures[variant]["loop"].append((loop_seconds(pid) - loop) / done * 1e6)
                figures[variant]["process"].append((process_seconds(pid) - process) / done * 1e6)
                figures[variant]["rate"].append(result["throughput"])
                if result["ok"] != args.requests:
                    print(f"{variant}: only {result['ok']} of {args.requests} answered 200", flush=True)
            print("round: " + "; ".join(
                f"{v} loop {f['loop'][-1]:.0f} us, process {f['process'][-1]:.0f} us, "
                f"{f['rate'][-1]:.0f} img/s"
                for v, f in figures.items()) + f" (load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    print(f"\n{args.workload}, c={args.concurrency}, {args.rounds} rounds x {args.requests} requests, "
          f"medians per request (load average {os.getloadavg()[0]:.2f}):")
    for variant, f in figures.items():
        print(f"  {NAMES.get(variant, variant):26s} event loop {statistics.median(f['loop']):6.0f} us   "
              f"process {statistics.median(f['process']):6.0f} us   "
              f"{statistics.median(f['rate']):6.0f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
