"""Images a second for ``classify_many``, ``litecls bulk classify`` on a local Ray and on a 3-node cluster.

    python benchmarks/bulk_ray.py                          # 2,000 JPEGs, EfficientNet-Lite0 int8
    python benchmarks/bulk_ray.py --count 500 --model /path/model.tflite

One run, same model file and the same folder of real photos of mixed sizes (re-encoded from the
sample photos by ``classify_throughput.build_folder``, two in seven of 12 megapixels):

* ``classify_many``: one ``ImageClassifier`` (1 interpreter thread) with 2 decoding threads,
  the library's own pipelined loop, in this process;
* ``bulk local Ray``: :func:`litecls.bulk.job.run_job` on a local Ray started on this machine's
  cores (decoding tasks, an actor pool of interpreters, Parquet parts written);
* ``bulk 3-node cluster``: the same on ``ray.cluster_utils.Cluster``, a head and two worker
  nodes of one CPU each, all on this machine (they share its cores: this measures Ray's
  overhead across nodes, not a speed-up).

Bulk figures count the pipeline from the first task to the last part written; Ray's start-up
(a few seconds, once per job) is printed apart. Prints the machine, the load average before
and after (the machine may be shared) and the ratios; target: local Ray >= 85 % of
``classify_many``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify_throughput import build_folder, load

from litecls.bulk.pipeline import PipelineSettings


def tree_cpu() -> dict[int, tuple[str, float]]:
    """``{pid: (title, CPU seconds)}`` of this process and all its descendants alive now (a local
    Ray's raylet, GCS and workers, the simulated cluster's nodes): what other load on the machine
    blurs less than wall time."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    mine = {os.getpid()}
    changed = True  # a parent may have a higher pid than its child: iterate to a fixed point
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                changed = True
    return {pid: (process_title(pid), cpu[pid]) for pid in mine if pid in cpu}


def process_title(pid: int) -> str:
    """A process's role, from its command line: ``ray::MapWorker(...)``, ``raylet``, ``gcs_server``..."""
    if pid == os.getpid():
        return "driver (this process)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            words = file.read().split(b"\0")
    except OSError:
        return "?"
    first = words[0].decode(errors="replace")
    if first.startswith("ray::"):
        return first.split(" ")[0]
    name = Path(first).name
    if name.startswith("python") and len(words) > 1:  # a Python helper: name its script
        return Path(words[1].decode(errors="replace")).name or name
    return name


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its descendants alive now."""
    return sum(seconds for _, seconds in tree_cpu().values())


def cpu_breakdown(before: dict[int, tuple[str, float]], count: int) -> str:
    """Where the CPU went since ``before``, by process role, in ms per image."""
    roles: dict[str, float] = {}
    for pid, (title, seconds) in tree_cpu().items():
        roles[title] = roles.get(title, 0.0) + seconds - before.get(pid, (title, 0.0))[1]
    return ", ".join(f"{title} {1000 * seconds / count:.2f}" for title, seconds in
                     sorted(roles.items(), key=lambda kv: -kv[1]) if seconds > 0)


def bench_classify_many(model: str, paths: list[Path]) -> tuple[float, float]:
    """``(images/s, CPU seconds per image)``."""
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    options = ImageClassifierOptions(model_path=model, max_results=5, num_threads=1)
    with ImageClassifier.create_from_options(options) as classifier:
        cpu, started = tree_cpu_seconds(), time.perf_counter()
        count = sum(1 for _ in classifier.classify_many([str(p) for p in paths], workers=2))
        return count / (time.perf_counter() - started), (tree_cpu_seconds() - cpu) / count


def bench_bulk(model: str, folder: Path, out: Path, address: str | None,
               settings: PipelineSettings, breakdown: bool = False) -> tuple[float, float, float]:
    """``(images/s of the pipeline, CPU seconds per image, seconds to start or join Ray)``."""
    import ray

    from litecls.bulk.adapters import ClassifyAdapter
    from litecls.bulk.cluster import connect
    from litecls.bulk.job import check_model, run_job
    from litecls.tasks import ImageClassifierOptions

    adapter = ClassifyAdapter(ImageClassifierOptions(model_path=model, max_results=5, num_threads=1))
    check_model(adapter)
    started = time.perf_counter()
    connect(address)
    startup = time.perf_counter() - started
    before = tree_cpu()
    summary = run_job(str(folder), out, adapter, settings, progress=None)
    cpu = (tree_cpu_seconds() - sum(seconds for _, seconds in before.values())) / summary.written
    if breakdown:
        print(f"    CPU ms per image by process: {cpu_breakdown(before, summary.written)}")
    ray.shutdown()
    return summary.images_per_second, cpu, startup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0:int8",
                        help="a .tflite file or zoo reference (default efficientnet_lite0:int8)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "litecls-bulk-photos")
    parser.add_argument("--count", type=int, default=2000, help="number of JPEGs (default 2,000)")
    parser.add_argument("--actors", type=int, help="interpreters in the pool (default: one per CPU)")
    parser.add_argument("--settings", default="",
                        help="PipelineSettings fields to change, e.g. block_rows=32,actor_cpus=0.5")
    parser.add_argument("--breakdown", action="store_true",
                        help="print each bulk run's CPU per image by process (driver, actors, raylet...)")
    parser.add_argument("--skip", default="", help="comma-separated variants to skip: many,local,cluster")
    args = parser.parse_args(argv)

    from litecls.cli.common import resolve_cli_model
    from litecls.evaluation.machine import machine_info

    model = resolve_cli_model(args.model, None)
    paths = build_folder(args.folder, args.count)
    folder = args.folder if len(sorted(args.folder.glob("*.jpg"))) == len(paths) else None
    if folder is None:  # the folder holds more photos than asked for: link the first ones
        folder = Path(tempfile.mkdtemp(prefix="litecls-bulk-")) / "photos"
        folder.mkdir()
        for path in paths:
            os.symlink(path, folder / path.name)
    print(f"machine: {machine_info().summary()}")
    print(f"{len(paths)} JPEGs in {folder}; model {model}; before: {load()}")
    skip = set(args.skip.split(","))
    fields = {k: (float if "cpus" in k else int)(v) for k, v in
              (pair.split("=") for pair in args.settings.split(",") if pair)}
    settings = PipelineSettings(**{"actors": args.actors, **fields})
    print(f"pipeline: {settings}")
    rates: dict[str, float] = {}
    cpus: dict[str, float] = {}
    if "many" not in skip:
        rates["classify_many"], cpus["classify_many"] = bench_classify_many(model, paths)
        print(f"  classify_many         {rates['classify_many']:7.1f} images/s  "
              f"{1000 * cpus['classify_many']:6.1f} ms CPU/image  ({load()})", flush=True)
    with tempfile.TemporaryDirectory(prefix="litecls-bulk-out-") as out:
        if "local" not in skip:
            rate, cpu, startup = bench_bulk(model, folder, Path(out) / "local", None, settings,
                                             args.breakdown)
            rates["local Ray"], cpus["local Ray"] = rate, cpu
            print(f"  bulk local Ray        {rate:7.1f} images/s  {1000 * cpu:6.1f} ms CPU/image  "
                  f"(Ray start {startup:.1f} s; {load()})", flush=True)
        if "cluster" not in skip:
            from ray.cluster_utils import Cluster

            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
            for _ in range(2):
                cluster.add_node(num_cpus=1)
            try:
                rate, cpu, startup = bench_bulk(model, folder, Path(out) / "cluster", cluster.address,
                                                settings, args.breakdown)
            finally:
                cluster.shutdown()
            rates["3-node cluster"], cpus["3-node cluster"] = rate, cpu
            print(f"  bulk 3-node cluster   {rate:7.1f} images/s  {1000 * cpu:6.1f} ms CPU/image  "
                  f"(join {startup:.1f} s; {load()})", flush=True)
    base = rates.get("classify_many")
    if base:
        for name in ("local Ray", "3-node cluster"):
            if name in rates:
                print(f"  {name} / classify_many: {rates[name] / base:.0%} of the images/s, "
                      f"{cpus['classify_many'] / cpus[name]:.0%} of the images per CPU second"
                      f"{' (target >= 85%)' if name == 'local Ray' else ''}")
    print(f"finished; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
