"""Load test of ``litecls serve`` on the loopback address: throughput and p50/p99 latency.

    python benchmarks/serve_load.py                    # full run (a few minutes on 2 cores)
    python benchmarks/serve_load.py --quick            # fewer requests per level, to check it works
    python benchmarks/serve_load.py --memory 10000     # also: resident memory after 1,000 and 10,000 requests

One run, same model file (EfficientNet-Lite0 int8 by default) and same inputs for every variant:

* ``service, batch 4``: ``litecls serve --max-batch 4`` (dynamic batching on);
* ``service, no batching``: ``litecls serve`` as it starts by default (``--max-batch 1``);
* ``mediapipe app``: a minimal FastAPI app calling MediaPipe Tasks' ``ImageClassifier`` per
  request (one classifier behind a lock, images decoded with PIL);
* ``offline classify_many``: no HTTP at all, ``ImageClassifier.classify_many`` over the same bytes.

Two workloads: ``photos``, the ~200 JPEGs of mixed sizes of ``classify_throughput.py`` (two in
seven of 12 megapixels: decode-bound) and ``frames``, 200 camera-sized 320x240 JPEGs
(inference-bound). Each request carries one image as its raw body. The client is a small asyncio
HTTP/1.1 client with ``c`` keep-alive connections, each sending its next request when the last
is answered, at concurrency 1, 8, 32 and 128; each level sends a bounded number of requests and
stops. Only 127.0.0.1 is ever contacted. Latency percentiles are over accepted (200) requests;
503s (the service's queue limit, ``--max-queue``) are counted apart.
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


def serve_mediapipe(model: Path) -> Process:
    return Process([sys.executable, __file__, "--mediapipe-app", str(model)])


def mediapipe_app(model: str) -> None:
    """The naive baseline: FastAPI + MediaPipe ImageClassifier per request (run in a subprocess)."""
    import socket
    import threading

    import mediapipe as mp
    import uvicorn
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=5)
    classifier = vision.ImageClassifier.create_from_options(options)
    lock = threading.Lock()
    app = FastAPI()

    def run(data: bytes) -> list[dict]:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
        with lock:
            result = classifier.classify(image)
        return [{"index": c.index, "score": c.score, "category_name": c.category_name}
                for c in result.classifications[0].categories]

    @app.post("/v1/classify")
    async def classify(request: Request) -> dict:
        data = await request.body()
        categories = await asyncio.get_running_loop().run_in_executor(None, run, data)
        return {"results": [{"file": "body", "categories": categories}]}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so TCP_NODELAY is set
    sock.bind((HOST, 0))
    print(f"http://{HOST}:{sock.getsockname()[1]}/", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


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


def offline(model: Path, bodies: list[bytes], threads: int, total: int) -> dict:
    """``classify_many`` over the same bytes in-process, and the per-image time of ``classify``."""
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    options = ImageClassifierOptions(model_path=model, num_threads=threads)
    with ImageClassifier.create_from_options(options) as classifier:
        classifier.classify(bodies[0])
        started = time.perf_counter()
        done = sum(1 for _ in classifier.classify_many((bodies[i % len(bodies)] for i in range(total)),
                                                       workers=2))
        throughput = done / (time.perf_counter() - started)
        single = []
        for i in range(min(total, 100)):
            t = time.perf_counter()
            classifier.classify(bodies[i % len(bodies)])
            single.append(time.perf_counter() - t)
    return {"throughput": throughput, "p50": statistics.median(single) * 1000, "p99": _pct(single, 99),
            "ok": done, "busy": 0, "failed": 0}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0:int8", help="zoo reference or .tflite")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (all variants)")
    parser.add_argument("--requests", type=int, default=400, help="requests per level (at least 2 x c)")
    parser.add_argument("--quick", action="store_true", help="100 requests per level, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level, variants alternating")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--workloads", nargs="+", default=["photos", "frames"], choices=["photos", "frames"])
    parser.add_argument("--variants", nargs="+", default=["service", "nobatch", "mediapipe", "offline"],
                        choices=["service", "nobatch", "mediapipe", "offline"])
    parser.add_argument("--memory", type=int, default=0,
                        help="also send this many frame requests at c=8 and report the service's RSS")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "litecls-throughput")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--invoke", nargs="*", metavar="MODEL",
                        help="only measure batched invoke per image for these models (default: "
                             "efficientnet_lite0 int8 and float32) at --threads, then stop")
    parser.add_argument("--mediapipe-app", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mediapipe_app:
        mediapipe_app(args.mediapipe_app)
        return 0
    from litecls.tasks.image_classifier import resolve_model

    if args.invoke is not None:
        refs = args.invoke or ["efficientnet_lite0:int8", "efficientnet_lite0:float32"]
        print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
        invoke_ratios([resolve_model(ref)[0] for ref in refs], args.threads, 5 if args.quick else 20)
        return 0
    model, _ = resolve_model(args.model)
    per_level = 100 if args.quick else args.requests
    if args.quick:
        args.rounds = 1
    workloads = {}
    if "photos" in args.workloads:
        workloads["photos"] = photo_workload(args.folder, 200)
    if "frames" in args.workloads:
        workloads["frames"] = frame_workload(200)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"{cpu}, {os.cpu_count()} cores; model {model.name}; {args.threads} interpreter threads; "
          f"{per_level} requests per level; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    names = {"service": "service, batch 4", "nobatch": "service, no batching", "mediapipe": "mediapipe app",
             "offline": "offline classify_many"}
    rows = []
    for workload, bodies in workloads.items():
        # All servers of a workload run at once and the levels are interleaved across variants, so
        # load from other processes hits every variant alike.
        servers: dict[str, Process] = {}
        try:
            for variant in args.variants:
                if variant == "mediapipe":
                    servers[variant] = serve_mediapipe(model)
                elif variant in ("service", "nobatch"):
                    extra = ["--max-batch", "1" if variant == "nobatch" else "4"]
                    servers[variant] = serve_litecls(model, args.threads, extra)
            for server in servers.values():  # warm-up, with bursts that make every batch size
                asyncio.run(load_level(server.port, bodies, 16, 64))
            if "offline" in args.variants:
                result = offline(model, bodies, args.threads, per_level)
                rows.append((workload, names["offline"], "-", result))
                print(_line(rows[-1]), flush=True)
            results: dict[tuple[str, int], list[dict]] = {(v, n): [] for v in servers for n in args.levels}
            for level in args.levels:
                for _ in range(args.rounds):  # rounds alternate the variants at each level
                    for variant in servers:
                        port = servers[variant].port
                        total = max(per_level, 2 * level)
                        results[(variant, level)].append(asyncio.run(load_level(port, bodies, level, total)))
                for variant in servers:
                    rows.append((workload, names[variant], level, merge(results[(variant, level)])))
                    print(_line(rows[-1]), flush=True)
        finally:
            for server in servers.values():
                server.stop()
    order = {name: i for i, name in enumerate(names.values())}
    rows.sort(key=lambda row: (list(workloads).index(row[0]), order[row[1]]))
    if args.memory:
        server = serve_litecls(model, args.threads, [])
        try:
            frames = workloads.get("frames") or frame_workload(200)
            asyncio.run(load_level(server.port, frames, 8, 1000))
            first = server.rss_mb()
            asyncio.run(load_level(server.port, frames, 8, args.memory - 1000))
            last = server.rss_mb()
            print(f"service RSS after 1,000 requests {first:.0f} MB, after {args.memory:,} {last:.0f} MB "
                  f"({(last / first - 1) * 100:+.1f} %)")
        finally:
            server.stop()
    table = _table(rows)
    print("\n" + table)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


def _line(row) -> str:
    workload, variant, level, r = row
    return (f"{workload:7s} {variant:22s} c={level!s:>4}: {r['throughput']:7.1f} img/s  "
            f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
            f"ok {r['ok']}  503 {r['busy']}  failed {r['failed']}")


def _table(rows) -> str:
    lines = ["| workload | variant | concurrency | img/s | p50 (ms) | p99 (ms) | 503s (p50 ms) | failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for workload, variant, level, r in rows:
        refused = f" ({_pct(r['refused'], 50):.1f})" if r.get("refused") else ""
        lines.append(f"| {workload} | {variant} | {level} | {r['throughput']:.0f} | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {r['busy']}{refused} | {r['failed']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
