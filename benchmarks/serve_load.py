"""Load test of ``litecls serve`` on the loopback address: throughput and p50/p99 latency.

    python benchmarks/serve_load.py              # full run: table, a verdict per target (4-7 min, 2 cores)
    python benchmarks/serve_load.py --quick      # 60 requests a level, one round, no memory: a check
    python benchmarks/serve_load.py --markdown serve.md   # also write the table and verdicts

One run, same model file (EfficientNet-Lite0 int8 by default) and same inputs for every variant:

* ``service, --max-batch 4``: ``litecls serve`` with dynamic batching (up to 4 images an invoke);
* ``service, --max-batch 1``: without batching (the row marked ``(default)`` is how it starts);
* ``naive litecls app``: a minimal FastAPI app calling ``ImageClassifier.classify`` per request
  in the default thread pool (the issue's naive app: no batching, limits, metrics or options);
* ``mediapipe app``: the same minimal app calling MediaPipe Tasks' ``ImageClassifier`` per
  request (one classifier behind a lock, images decoded with PIL);
* ``offline classify_many``: no HTTP at all, ``ImageClassifier.classify_many`` over the same
  bytes; its p50/p99 are ``classify()`` per image on the same images, run beside the c=1
  rounds: the yardstick of the c=1 target.

Two workloads: ``photos``, the ~200 JPEGs of mixed sizes of ``classify_throughput.py`` (two in
seven of 12 megapixels: decode-bound) and ``frames``, 200 camera-sized 320x240 JPEGs
(inference-bound). Each request carries one image as its raw body. The client is a small asyncio
HTTP/1.1 client with ``c`` keep-alive connections, each sending its next request when the last
is answered, at concurrency 1, 8, 32 and 128; each level sends a bounded number of requests per
round and stops; the rounds alternate the variants (all servers run at once), so load from
other processes hits each alike. Throughput: the median over rounds; latency percentiles: over
all accepted (200) requests of the level; 503s (``--max-queue 64``) are counted apart. Then the
default service's resident memory after 1,000 and after ``--memory`` frame requests. Only
127.0.0.1 is ever contacted. The report ends with one verdict line per target of issue 17 and
the CPU and load average, which decide how far figures from different runs compare.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from PIL import Image

HOST = "127.0.0.1"  # the only address this benchmark ever talks to
LEVELS = (1, 8, 32, 128)


# -- inputs -------------------------------------------------------------------------------------


def photo_workload(folder: Path, count: int) -> list[bytes]:
    """The mixed-size JPEGs of ``classify_throughput.py`` (made once in ``folder``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from classify_throughput import build_folder

    return [p.read_bytes() for p in build_folder(folder, count)]


def frame_workload(count: int) -> list[bytes]:
    """``count`` 320x240 JPEGs (quality 85) cut from the sample photos, as a camera would send."""
    from litecls.samples import demo_photos, labelled_imagenet_photos

    sources = [p for p, _ in labelled_imagenet_photos()] + demo_photos()
    frames = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            photo = image.convert("RGB")
        # a different 4:3 window of the photo each time round
        width, height = photo.size
        crop_w = min(width, height * 4 // 3) * (10 - (i // len(sources)) % 3) // 10
        crop_h = crop_w * 3 // 4
        left = (width - crop_w) * ((i // len(sources)) % 3) // 2
        top = (height - crop_h) // 2
        frame = photo.crop((left, top, left + crop_w, top + crop_h))
        frame = frame.resize((320, 240), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        frame.save(buffer, format="JPEG", quality=85)
        frames.append(buffer.getvalue())
    return frames


# -- servers ------------------------------------------------------------------------------------


class Process:
    """A server subprocess that prints ``http://127.0.0.1:PORT/`` on its first line."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not found:
            self.stop()
            raise RuntimeError(f"server did not start: {' '.join(command)}: {line!r}")
        self.port = int(found.group(1))
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self, timeout: float = 120.0) -> None:
        """Until a GET / gets any HTTP answer (the model is loaded before the port answers)."""
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
                connection.request("GET", "/")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer")

    def rss_mb(self) -> float:
        """Resident memory of the server process, MB."""
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_litecls(model: Path, threads: int, extra: list[str]) -> Process:
    return Process([sys.executable, "-m", "litecls.cli.main", "serve", "--host", HOST, "--port", "0",
                    "--model", str(model), "--threads", str(threads), *extra])


def serve_app(kind: str, model: Path, threads: int) -> Process:
    """One of the baseline apps (``mediapipe`` or ``naive``) in a subprocess of this script."""
    return Process([sys.executable, __file__, f"--{kind}-app", str(model), "--threads", str(threads)])


def _run_app(app: FastAPI) -> None:
    """Serve ``app`` on a free loopback port with uvicorn, printing its URL first (as ``litecls serve``)."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so TCP_NODELAY is set
    sock.bind((HOST, 0))
    print(f"http://{HOST}:{sock.getsockname()[1]}/", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def _app(run) -> FastAPI:
    """The minimal app of a baseline: the raw body in, ``run(body)`` in the default thread pool."""
    app = FastAPI()

    @app.post("/v1/classify")
    async def classify(request: Request) -> dict:
        data = await request.body()
        categories = await asyncio.get_running_loop().run_in_executor(None, run, data)
        return {"results": [{"file": "body", "categories": categories}]}

    return app


def mediapipe_app(model: str, threads: int) -> None:
    """The issue's baseline (c): FastAPI + MediaPipe's ImageClassifier per request (a subprocess).

    MediaPipe's ``classify`` runs its own resizing in C++; images are decoded with PIL. MediaPipe
    picks its own interpreter thread count (``threads`` is not an option of its Python API).
    """
    import threading

    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=5)
    classifier = vision.ImageClassifier.create_from_options(options)
    lock = threading.Lock()

    def run(data: bytes) -> list[dict]:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
        with lock:
            result = classifier.classify(image)
        return [{"index": c.index, "score": c.score, "category_name": c.category_name}
                for c in result.classifications[0].categories]

    _run_app(_app(run))


def naive_app(model: str, threads: int) -> None:
    """The issue's naive per-request litecls app: FastAPI calling ``ImageClassifier.classify`` per request.

    No batching, no admission limit, no metrics, no options: the body goes to ``classify`` in
    the default thread pool (the classifier's own lock keeps invokes one at a time).
    """
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    options = ImageClassifierOptions(model_path=model, num_threads=threads, max_results=5)
    classifier = ImageClassifier.create_from_options(options)

    def run(data: bytes) -> list[dict]:
        return [{"index": c.index, "score": c.score, "category_name": c.category_name}
                for c in classifier.classify(data).categories]

    _run_app(_app(run))


# -- client -------------------------------------------------------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int,
                   body: bytes) -> int:
    writer.write(f"POST /v1/classify HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: image/jpeg\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    await reader.readexactly(length)
    return status


async def load_level(port: int, bodies: list[bytes], concurrency: int, total: int) -> dict:
    """Send ``total`` requests over ``concurrency`` keep-alive connections; latency of each 200."""
    next_index = 0
    latencies: list[float] = []
    refused: list[float] = []  # how long a 503 took
    statuses: dict[int, int] = {}

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while next_index < total:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                started = time.perf_counter()
                try:
                    status = await _request(reader, writer, port, body)
                except (ConnectionError, asyncio.IncompleteReadError):
                    status = -1
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                elif status == 503:
                    refused.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ok = statuses.get(200, 0)
    return {"throughput": ok / elapsed, "p50": _pct(latencies, 50), "p99": _pct(latencies, 99),
            "ok": ok, "busy": statuses.get(503, 0),
            "failed": sum(n for s, n in statuses.items() if s not in (200, 503)), "latencies": latencies,
            "refused": refused}


def merge(results: list[dict]) -> dict:
    """Rounds of one level: median throughput, percentiles of all latencies, summed counts."""
    latencies = [t for r in results for t in r["latencies"]]
    refused = [t for r in results for t in r.get("refused", [])]
    return {"throughput": statistics.median(r["throughput"] for r in results),
            "p50": _pct(latencies, 50), "p99": _pct(latencies, 99), "latencies": latencies,
            "refused": refused,
            **{key: sum(r[key] for r in results) for key in ("ok", "busy", "failed")}}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def offline(classifier, bodies: list[bytes], total: int) -> dict:
    """One round without HTTP: ``classify_many`` over ``total`` bodies (throughput), then
    ``classify()`` on each of the same ``total`` bodies in turn (latencies: the c=1 yardstick)."""
    started = time.perf_counter()
    images = (bodies[i % len(bodies)] for i in range(total))
    done = sum(1 for _ in classifier.classify_many(images, workers=2))
    throughput = done / (time.perf_counter() - started)
    single = []
    for i in range(total):
        t = time.perf_counter()
        classifier.classify(bodies[i % len(bodies)])
        single.append(time.perf_counter() - t)
    return {"throughput": throughput, "p50": _pct(single, 50), "p99": _pct(single, 99), "latencies": single,
            "refused": [], "ok": done, "busy": 0, "failed": 0}


def invoke_ratios(models: list[Path], threads: int, rounds: int,
                  sizes: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
    """Per-image time of one batched invoke of N real frames against N = 1, interleaved, medians."""
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    frames = frame_workload(16)
    for model in models:
        options = ImageClassifierOptions(model_path=model, num_threads=threads)
        classifiers = {n: ImageClassifier.create_from_options(options) for n in sizes}
        tensors = np.concatenate([classifiers[1].preprocess(f) for f in frames])
        times: dict[int, list[float]] = {n: [] for n in sizes}
        for n, classifier in classifiers.items():  # shape each interpreter once
            classifier.classify_tensors(tensors[:n])
        for _ in range(rounds):
            for n, classifier in classifiers.items():
                started = time.perf_counter()
                for start in range(0, 16, n):
                    classifier.classify_tensors(tensors[start:start + n])
                times[n].append((time.perf_counter() - started) / 16 * 1000)
        base = statistics.median(times[1])
        print(f"{model.name}, {threads} threads, per image: " + ", ".join(
            f"batch {n} {statistics.median(t):.2f} ms ({statistics.median(t) / base:.2f}x)"
            for n, t in times.items()), flush=True)
        for classifier in classifiers.values():
            classifier.close()


# -- run ----------------------------------------------------------------------------------------

#: Row names of the variants, in table order; the service's default batching is marked at run time.
NAMES = {"batch": "service, --max-batch 4", "nobatch": "service, --max-batch 1", "naive": "naive litecls app",
         "mediapipe": "mediapipe app", "offline": "offline classify_many"}
#: Requests per level and round when --requests is not given: photos are ~3x slower than frames.
REQUESTS = {"photos": 160, "frames": 400}
MAX_QUEUE = 64  # the service's --max-queue in this benchmark (its default)


def start_servers(variants: list[str], model: Path, threads: int) -> dict[str, Process]:
    """Every HTTP variant at once, each in its own process, all loaded and answering."""
    servers: dict[str, Process] = {}
    try:
        for variant in variants:
            if variant in ("mediapipe", "naive"):
                servers[variant] = serve_app(variant, model, threads)
            elif variant in ("batch", "nobatch"):
                servers[variant] = serve_litecls(model, threads, [
                    "--max-batch", "4" if variant == "batch" else "1", "--max-queue", str(MAX_QUEUE)])
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def run_workload(workload: str, bodies: list[bytes], args: argparse.Namespace, model: Path) -> list[tuple]:
    """One workload's rows: every variant at every level, rounds alternating the variants."""
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    rows = []
    servers = start_servers(args.variants, model, args.threads)
    classifier = None
    if "offline" in args.variants:
        classifier = ImageClassifier.create_from_options(
            ImageClassifierOptions(model_path=model, num_threads=args.threads))
        classifier.classify(bodies[0])
    try:
        for server in servers.values():  # warm-up, with bursts that make every batch size
            asyncio.run(load_level(server.port, bodies, 16, 64))
        per_level = args.requests or REQUESTS[workload]
        rounds_off: list[dict] = []
        for level in args.levels:
            results: dict[str, list[dict]] = {variant: [] for variant in servers}
            total = max(per_level, 2 * level)
            for _ in range(args.rounds):  # load from other processes hits every variant alike
                for variant, server in servers.items():
                    results[variant].append(asyncio.run(load_level(server.port, bodies, level, total)))
                if classifier is not None and level == args.levels[0]:  # beside the c=1 rounds
                    rounds_off.append(offline(classifier, bodies, total))
            for variant in servers:
                rows.append((workload, variant, level, merge(results[variant])))
                print(_line(rows[-1]), f"(load {os.getloadavg()[0]:.1f})", flush=True)
        if rounds_off:
            rows.append((workload, "offline", "-", merge(rounds_off)))
            print(_line(rows[-1]), flush=True)
    finally:
        for server in servers.values():
            server.stop()
        if classifier is not None:
            classifier.close()
    return rows


def memory_growth(model: Path, threads: int, frames: list[bytes], total: int) -> tuple[float, float]:
    """The default service's resident MB after 1,000 frame requests (c=8) and after ``total``."""
    server = serve_litecls(model, threads, [])
    try:
        asyncio.run(load_level(server.port, frames, 8, 1000))
        first = server.rss_mb()
        asyncio.run(load_level(server.port, frames, 8, total - 1000))
        return first, server.rss_mb()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0:int8", help="zoo reference or .tflite")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (all variants)")
    parser.add_argument("--requests", type=int, help="requests per level and round (default: photos "
                        f"{REQUESTS['photos']}, frames {REQUESTS['frames']}; at least 2 x c)")
    parser.add_argument("--quick", action="store_true", help="60 requests per level, one round, no memory")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level, variants alternating")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--workloads", nargs="+", default=["photos", "frames"], choices=["photos", "frames"])
    parser.add_argument("--variants", nargs="+", default=list(NAMES), choices=list(NAMES))
    parser.add_argument("--memory", type=int, default=10_000,
                        help="frame requests (c=8) after which the service's RSS is compared with "
                             "its RSS after the first 1,000 (0: skip)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "litecls-throughput")
    parser.add_argument("--markdown", type=Path, help="also write the table and verdicts here")
    parser.add_argument("--invoke", nargs="*", metavar="MODEL",
                        help="only measure batched invoke per image for these models (default: "
                             "efficientnet_lite0 int8 and float32) at --threads, then stop")
    parser.add_argument("--mediapipe-app", help=argparse.SUPPRESS)
    parser.add_argument("--naive-app", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mediapipe_app or args.naive_app:
        app = mediapipe_app if args.mediapipe_app else naive_app
        app(args.mediapipe_app or args.naive_app, args.threads)
        return 0
    from litecls.tasks.image_classifier import resolve_model

    if args.invoke is not None:
        refs = args.invoke or ["efficientnet_lite0:int8", "efficientnet_lite0:float32"]
        print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
        invoke_ratios([resolve_model(ref)[0] for ref in refs], args.threads, 5 if args.quick else 20)
        return 0
    model, _ = resolve_model(args.model)
    if args.quick:
        args.rounds, args.requests, args.memory = 1, args.requests or 60, 0
    started, load_start = time.perf_counter(), os.getloadavg()
    print(f"{_machine()}; model {model.name}; {args.threads} interpreter threads; {args.rounds} rounds; "
          f"load average at start {load_start[0]:.2f} (1 min), {load_start[1]:.2f} (5 min)", flush=True)
    rows = []
    for workload in args.workloads:
        bodies = photo_workload(args.folder, 200) if workload == "photos" else frame_workload(200)
        rows += run_workload(workload, bodies, args, model)
    memory = memory_growth(model, args.threads, frame_workload(200), args.memory) if args.memory else None
    load_end = os.getloadavg()
    order = list(NAMES)
    rows.sort(key=lambda row: (args.workloads.index(row[0]), order.index(row[1])))
    report = [_table(rows), "", *verdicts(rows, memory, args.memory), "",
              f"{_machine()}; load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
              f"(1 min; {load_end[2]:.1f} over 15 min); {time.perf_counter() - started:.0f} s"]
    print("\n" + "\n".join(report))
    if args.markdown:
        args.markdown.write_text("\n".join(report) + "\n")
    return 0


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{cpu}, {os.cpu_count()} cores"


def _name(variant: str) -> str:
    from litecls.serve.settings import ServeSettings

    default = "batch" if ServeSettings.model_fields["max_batch"].default > 1 else "nobatch"
    return NAMES[variant] + (" (default)" if variant == default else "")


def _line(row) -> str:
    workload, variant, level, r = row
    return (f"{workload:7s} {_name(variant):34s} c={level!s:>4}: {r['throughput']:7.1f} img/s  "
            f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
            f"ok {r['ok']}  503 {r['busy']}  failed {r['failed']}")


def _table(rows) -> str:
    lines = ["| workload | variant | concurrency | img/s | p50 (ms) | p99 (ms) | 503s (p50 ms) | failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for workload, variant, level, r in rows:
        refused = f" ({_pct(r['refused'], 50):.1f})" if r.get("refused") else ""
        lines.append(f"| {workload} | {_name(variant)} | {level} | {r['throughput']:.0f} | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {r['busy']}{refused} | {r['failed']} |")
    return "\n".join(lines)


def verdicts(rows, memory: tuple[float, float] | None, requests: int) -> list[str]:
    """One line per target of issue 17: the figures it compares and ``met`` / ``NOT met``."""
    found = {(w, v, level): r for w, v, level, r in rows}
    default = "batch" if "(default)" in _name("batch") else "nobatch"
    out = []

    def say(target: str, ok: bool | None, figures: str) -> None:
        out.append(f"* {target}: {figures}: {'n/a' if ok is None else 'met' if ok else 'NOT met'}")

    svc, off, mp = (found.get(("photos", v, lv)) for v, lv in ((default, 32), ("offline", "-"),
                                                                  ("mediapipe", 32)))
    if svc and off and mp:
        say("photos, c=32: service >= 85 % of offline classify_many and >= 2x the MediaPipe app",
            svc["throughput"] >= 0.85 * off["throughput"] and svc["throughput"] >= 2 * mp["throughput"],
            f"{svc['throughput']:.0f} img/s = {svc['throughput'] / off['throughput']:.0%} of "
            f"{off['throughput']:.0f}, {svc['throughput'] / mp['throughput']:.2f}x {mp['throughput']:.0f}")
    for level in (8, 32):
        svc, naive, mp = (found.get(("frames", v, level)) for v in (default, "naive", "mediapipe"))
        if svc and naive:
            say(f"frames, c={level}: service >= the naive litecls app, p99 no worse",
                svc["throughput"] >= naive["throughput"] and svc["p99"] <= naive["p99"],
                f"{svc['throughput']:.0f} vs {naive['throughput']:.0f} img/s "
                f"({svc['throughput'] / naive['throughput']:.2f}x), "
                f"p99 {svc['p99']:.0f} vs {naive['p99']:.0f} ms"
                + (f" (MediaPipe app {mp['throughput']:.0f} img/s, p99 {mp['p99']:.0f} ms)" if mp else ""))
    for workload in ("photos", "frames"):
        svc = found.get((workload, default, 128))
        if svc:
            bound = MAX_QUEUE / svc["throughput"] * 1000  # at most MAX_QUEUE requests ahead of one
            say(f"{workload}, c=128: fast 503 beyond --max-queue {MAX_QUEUE}, accepted p99 bounded by "
                f"2 x queue / throughput", bool(svc["busy"]) and svc["p99"] <= 2 * bound
                and _pct(svc["refused"], 50) < svc["p50"] / 2,
                f"{svc['busy']} 503s, median {_pct(svc['refused'], 50):.0f} ms; accepted p50 "
                f"{svc['p50']:.0f} ms, p99 {svc['p99']:.0f} ms against {2 * bound:.0f} ms")
        svc, off = found.get((workload, default, 1)), found.get((workload, "offline", "-"))
        if svc and off:
            say(f"{workload}, c=1: p50 within 2 ms of the library's per-image classify()",
                svc["p50"] - off["p50"] <= 2, f"{svc['p50']:.1f} vs {off['p50']:.1f} ms "
                f"({svc['p50'] - off['p50']:+.1f} ms)")
    below = [r for (w, v, level), r in found.items() if level != "-" and v in ("batch", "nobatch")
             and level < MAX_QUEUE]
    say(f"no failed request, no 503 below --max-queue {MAX_QUEUE} (service rows, c < {MAX_QUEUE})",
        all(not r["busy"] for r in below) and all(not r["failed"] for r in found.values()),
        f"{sum(r['failed'] for r in found.values())} failed, {sum(r['busy'] for r in below)} 503s")
    if memory:
        say(f"service RSS after {requests:,} requests within 10 % of after 1,000",
            memory[1] <= 1.1 * memory[0],
            f"{memory[0]:.0f} MB, then {memory[1]:.0f} MB ({(memory[1] / memory[0] - 1) * 100:+.1f} %)")
    for workload in ("photos", "frames"):
        ratios = [(level, found[(workload, "batch", level)], found[(workload, "nobatch", level)])
                  for level in (8, 32, 128) if (workload, "batch", level) in found
                  and (workload, "nobatch", level) in found]
        if ratios:
            faster = [level for level, b, n in ratios if b["throughput"] >= 1.05 * n["throughput"]]
            slower = [level for level, b, n in ratios if b["throughput"] <= 0.95 * n["throughput"]]
            on = default == "batch"
            say(f"{workload}: batching {'on' if on else 'off'} by default only where it measures faster "
                "(>= 5 %)", (not slower and bool(faster)) if on else not faster, ", ".join(
                    f"c={level} {b['throughput'] / n['throughput']:.2f}x (p99 {b['p99'] / n['p99']:.2f}x)"
                    for level, b, n in ratios) + f"; faster at c={faster or '-'}, "
                f"slower at c={slower or '-'}")
    return out


if __name__ == "__main__":
    sys.exit(main())
