"""A seeded fuzz corpus (images and models) and the runners that put it through litecls.

Used by ``tests/test_fuzz.py`` (CI size) and ``benchmarks/fuzz.py`` (large runs). Everything
runs in child processes: ``python tests/fuzzing.py images-api|models MODEL FILE...`` are the
children's entry points, so a crash, a signal or a hang in litecls shows up as the child's exit
status, and the child's peak resident memory comes from ``os.wait4``.

Images (:func:`write_images`): valid encodings in every format Pillow writes here, in many modes,
and mutations of them: truncations, bit flips, overwritten runs, duplicated JPEG markers / PNG
chunks / slices, rewritten header dimensions (JPEG SOF, PNG IHDR with a valid CRC, GIF, BMP),
corrupt EXIF (flipped bytes in the APP1 segment, absurd IFD counts, bad orientation values);
the special cases of issue 15 (a 1x65500 JPEG, a 1x1,000,000 PNG, a 10000x9999 palette PNG with
transparency, a 1x16383 WebP); non-images; and awkward paths (a directory named ``x.jpg``, links
to a folder and to nothing, names with a newline, an escape sequence or non-UTF-8 bytes, a
missing file, ``missing_dir/``).

Models (:func:`write_models`): mutations of real zoo files: bit flips, truncations, overwritten
and zeroed runs, quantization scales set to inf / nan / 0 / negative / extreme, zero points out
of range, changed shapes and types, rewired or removed operators, the graph output moved to the
pooled features (a feature extractor), and copies with the original's SHA-256 sidecar.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The budget the fuzz runs assert: peak resident memory of one child (KiB from ru_maxrss).
IMAGE_BUDGET_BYTES = 1 << 30

# -- images -----------------------------------------------------------------------------------------

#: (format, extension, modes to try) for every format Pillow writes (those it cannot write here
#: are skipped when saving fails). PDF, PALM and XBM are write-only or odd: still good non-images.
_FORMATS = [
    ("JPEG", ".jpg", ["RGB", "L", "CMYK"]), ("PNG", ".png", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"]),
    ("GIF", ".gif", ["P", "L"]), ("BMP", ".bmp", ["RGB", "L", "P", "1"]),
    ("TIFF", ".tif", ["RGB", "RGBA", "L", "I;16", "CMYK", "F", "1"]), ("WEBP", ".webp", ["RGB", "RGBA"]),
    ("PPM", ".ppm", ["RGB", "L", "1"]), ("ICO", ".ico", ["RGBA"]), ("TGA", ".tga", ["RGB", "RGBA", "L"]),
    ("PCX", ".pcx", ["RGB", "L", "P"]), ("SGI", ".sgi", ["RGB", "L"]), ("IM", ".im", ["RGB", "L", "F"]),
    ("JPEG2000", ".jp2", ["RGB", "L"]), ("AVIF", ".avif", ["RGB"]), ("DDS", ".dds", ["RGBA", "RGB"]),
    ("BLP", ".blp", ["P"]), ("MSP", ".msp", ["1"]), ("XBM", ".xbm", ["1"]), ("SPIDER", ".spi", ["F"]),
    ("QOI", ".qoi", ["RGB", "RGBA"]), ("ICNS", ".icns", ["RGBA"]), ("PDF", ".pdf", ["RGB"]),
    ("PALM", ".palm", ["1"]), ("MPO", ".mpo", ["RGB"]), ("EPS", ".eps", ["RGB"]),
]


def _base_image(rng: random.Random, mode: str, width: int, height: int):
    from PIL import Image

    nprng = np.random.default_rng(rng.randrange(2**32))
    rgb = nprng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # A smooth gradient under the noise, so the encoders have something to compress.
    rgb = (rgb // 4 + np.linspace(0, 190, width, dtype=np.uint8)[None, :, None]).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "P":
        image = image.quantize(colors=rng.choice([2, 16, 256]))
        if rng.random() < 0.5:
            image.info["transparency"] = 0
        return image
    if mode == "I;16":
        return Image.fromarray((nprng.integers(0, 65536, (height, width))).astype(np.uint16))
    if mode == "F":
        return Image.fromarray(nprng.random((height, width), dtype=np.float32) * 255)
    return image.convert(mode)


def _exif_bytes(rng: random.Random) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = rng.choice([1, 3, 6, 8, 2, 5, 7])   # orientation
    exif[0x010F] = "litecls fuzz"                       # make
    exif[0x0132] = "2026:12:02 12:00:00"                 # date
    return exif.tobytes()


def encode(rng: random.Random, fmt: str, mode: str, size: tuple[int, int]) -> bytes | None:
    """One valid encoding (or ``None`` when this Pillow cannot write that format and mode)."""
    image = _base_image(rng, mode, *size)
    buffer = io.BytesIO()
    kwargs: dict = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and rng.random() < 0.5:
        kwargs["exif"] = _exif_bytes(rng)
    if mode == "P" and "transparency" in image.info and fmt in ("PNG", "GIF"):
        kwargs["transparency"] = image.info["transparency"]
    if fmt == "JPEG" and rng.random() < 0.3:
        kwargs["progressive"] = True
    if fmt == "AVIF":
        kwargs["speed"] = 10
    try:
        image.save(buffer, fmt, **kwargs)
    except Exception:  # not writable here (format, mode or missing codec)
        return None
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_claiming(width: int, height: int, colour: int = 0, rows: int = 1) -> bytes:
    """A valid PNG header for ``width`` x ``height`` with ``rows`` zero rows of data (the rest missing)."""
    per_row = 1 + width * (3 if colour == 2 else 1)
    data = zlib.compress(b"\0" * per_row * rows, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))


def special_images() -> dict[str, bytes]:
    """The cases issue 15 names, each a small file claiming a huge or extreme image."""
    from PIL import Image

    out = {}
    buffer = io.BytesIO()
    Image.new("RGB", (1, 65500), (200, 30, 30)).save(buffer, "JPEG")
    out["tall_1x65500.jpg"] = buffer.getvalue()
    out["strip_1x1000000.png"] = png_claiming(1, 1_000_000, rows=1_000_000)
    palette = Image.new("P", (10000, 9999))
    palette.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    out["palette_10000x9999_transparent.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.new("RGB", (1, 16383)).save(buffer, "WEBP")
    out["strip_1x16383.webp"] = buffer.getvalue()
    out["claims_20000x20000.png"] = png_claiming(20000, 20000)
    out["claims_9500x10000_rgb.png"] = png_claiming(9500, 10000, colour=2)
    buffer = io.BytesIO()
    Image.new("RGB", (8000, 6000), (10, 120, 200)).save(buffer, "PNG")
    out["big_8000x6000.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.new("RGB", (12000, 8000), (90, 90, 90)).save(buffer, "JPEG", quality=50)
    out["big_12000x8000.jpg"] = buffer.getvalue()
    return out


def non_images(rng: random.Random) -> dict[str, bytes]:
    """Files with image names that are not images."""
    return {"empty.jpg": b"", "text.png": b"hello, not an image\n" * 20, "random.jpg": rng.randbytes(3000),
            "zip.jpg": b"PK\x03\x04" + rng.randbytes(200), "html.gif": b"<html><body>no</body></html>",
            "tflite.png": b"\x1c\x00\x00\x00TFL3" + rng.randbytes(500), "one_byte.bmp": b"B",
            "jpeg_soi_only.jpg": b"\xff\xd8", "png_sig_only.png": b"\x89PNG\r\n\x1a\n",
            "nul.webp": b"\0" * 4096}


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each marker segment before the scan data of a JPEG."""
    segments, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segments.append((pos, pos + 2 + length))
        pos += 2 + length
    return segments


def _png_chunks(data: bytes) -> list[tuple[int, int]]:
    chunks, pos = [], 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 12 + length
        if end > len(data):
            break
        chunks.append((pos, end))
        pos = end
    return chunks


_DIMENSIONS = [0, 1, 2, 3, 255, 4097, 16383, 30001, 65500, 65535]


def mutate_image(rng: random.Random, data: bytes, fmt: str) -> tuple[str, bytes]:
    """One mutation of an encoded image: ``(kind, bytes)``."""
    buf = bytearray(data)
    kind = rng.choice(["truncate", "bitflip", "overwrite", "duplicate", "dimensions", "exif"])
    if kind == "truncate" and len(buf) > 1:
        return kind, bytes(buf[:rng.randrange(1, len(buf))])
    if kind == "bitflip":
        for _ in range(rng.choice([1, 2, 4, 16])):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return kind, bytes(buf)
    if kind == "overwrite":
        start = rng.randrange(len(buf))
        run = rng.randrange(1, 160)
        buf[start:start + run] = rng.randbytes(min(run, len(buf) - start))
        return kind, bytes(buf)
    if kind == "duplicate":
        spans = _jpeg_segments(data) if fmt in ("JPEG", "MPO") else _png_chunks(data) if fmt == "PNG" else []
        if spans:
            start, end = rng.choice(spans)
        else:
            start = rng.randrange(len(buf))
            end = min(len(buf), start + rng.randrange(1, 400))
        copies = rng.choice([1, 2, 50])
        return "duplicate_marker" if spans else kind, bytes(buf[:end] + buf[start:end] * copies + buf[end:])
    if kind == "dimensions":
        width, height = rng.choice(_DIMENSIONS), rng.choice(_DIMENSIONS)
        if fmt in ("JPEG", "MPO"):
            for start, _end in _jpeg_segments(data):
                if buf[start + 1] in (0xC0, 0xC1, 0xC2):
                    buf[start + 5:start + 9] = struct.pack(">HH", height, width)
                    return kind, bytes(buf)
        if fmt == "PNG" and data[12:16] == b"IHDR":
            ihdr = bytearray(data[16:29])
            ihdr[0:8] = struct.pack(">II", width or 1, height * 16 + 1)
            return kind, bytes(data[:8] + _png_chunk(b"IHDR", bytes(ihdr)) + data[33:])
        if fmt == "GIF" and len(buf) > 10:
            buf[6:10] = struct.pack("<HH", width, height)
            return kind, bytes(buf)
        if fmt == "BMP" and len(buf) > 26:
            buf[18:26] = struct.pack("<ii", width, rng.choice([height, -height]))
            return kind, bytes(buf)
        i = rng.randrange(0, max(1, min(len(buf) - 4, 64)))
        buf[i:i + 4] = struct.pack(">HH", width, height)
        return kind, bytes(buf)
    # exif: damage the EXIF block where there is one, else add a damaged one to a JPEG
    at = data.find(b"Exif\0\0")
    if at < 0 and fmt in ("JPEG", "MPO"):
        exif = _exif_bytes(rng)
        segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
        buf = bytearray(data[:2] + segment + data[2:])
        at = 4 + 2
    if at < 0:
        at = data.find(b"MM\0*") if data.find(b"MM\0*") >= 0 else data.find(b"II*\0")
    if at < 0:
        return "bitflip", bytes(buf[:-1]) + bytes([buf[-1] ^ 0x10])
    how = rng.choice(["flip", "count", "orientation", "offset"])
    tiff = buf.find(b"II*\0", at) if buf.find(b"II*\0", at) >= 0 else buf.find(b"MM\0*", at)
    if tiff < 0:
        tiff = at
    little = buf[tiff:tiff + 2] == b"II"
    end = "<" if little else ">"
    if how == "flip":
        for _ in range(rng.choice([1, 4, 12])):
            i = rng.randrange(tiff, min(len(buf), tiff + 120))
            buf[i] ^= 1 << rng.randrange(8)
    elif how == "count" and tiff + 10 <= len(buf):
        ifd = struct.unpack(end + "I", buf[tiff + 4:tiff + 8])[0]
        if tiff + ifd + 2 <= len(buf):
            buf[tiff + ifd:tiff + ifd + 2] = struct.pack(end + "H", rng.choice([0, 0xFFFF, 0x7FFF, 300]))
    elif how == "orientation":
        tag = struct.pack(end + "H", 0x0112)
        i = buf.find(tag, tiff)
        if i >= 0 and i + 12 <= len(buf):
            buf[i + 2:i + 4] = struct.pack(end + "H", rng.choice([1, 2, 3, 4, 5, 7, 12]))  # type
            buf[i + 8:i + 10] = struct.pack(end + "H", rng.choice([0, 9, 65535, 6]))
    elif tiff + 8 <= len(buf):
        buf[tiff + 4:tiff + 8] = struct.pack(end + "I", rng.choice([0, 7, 0xFFFFFFF0, len(buf) * 4]))
    return "exif", bytes(buf)


@dataclass
class Corpus:
    """Files written by :func:`write_images`: ``inputs`` are the strings to pass, ``kinds`` their kind."""

    inputs: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)


def write_images(folder: Path, count: int, seed: int = 0) -> Corpus:
    """Write ``count`` (or a few more) fuzz inputs under ``folder``; return the strings to pass.

    About a fifth are valid encodings, the rest mutations; the special cases, non-images and
    awkward paths come once each. Input strings are relative to ``folder`` (run there).
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Corpus()

    def add(name: str, data: bytes | None, kind: str) -> None:
        if data is not None:
            (folder / name).write_bytes(data)
        corpus.inputs.append(name)
        corpus.kinds[name] = kind

    for name, data in special_images().items():
        add(name, data, "special")
    for name, data in non_images(rng).items():
        add(name, data, "non-image")
    (folder / "dir.jpg").mkdir(exist_ok=True)
    corpus.inputs.append("dir.jpg")
    corpus.kinds["dir.jpg"] = "path"
    for name, target in (("link_to_dir", "/tmp"), ("link_to_nothing.jpg", "does/not/exist.jpg")):
        if not os.path.lexists(folder / name):
            os.symlink(target, folder / name)
        corpus.inputs.append(name)
        corpus.kinds[name] = "path"
    for name in ("missing.jpg", "missing_dir/"):
        corpus.inputs.append(name)
        corpus.kinds[name] = "path"
    bases: list[tuple[str, str, bytes]] = []
    for fmt, ext, modes in _FORMATS:
        for mode in modes:
            size = (rng.randint(8, 200), rng.randint(8, 200))
            if fmt == "ICO":
                size = (64, 64)
            data = encode(rng, fmt, mode, size)
            if data is not None:
                bases.append((fmt, ext, data))
                add(f"valid_{len(corpus.inputs):05d}_{mode.replace(';', '')}{ext}", data, f"valid {fmt}")
    odd_names = ["new\nline.jpg", "esc\x1b[31mred.png", "tab\there.jpg", "bad\udcff\udcfebytes.jpg",
                 "-dash.jpg"]
    for name in odd_names:
        fmt, ext, data = rng.choice(bases)
        try:
            add(name, data, "path")
        except (OSError, UnicodeEncodeError):
            continue
    while len(corpus.inputs) < count:
        fmt, ext, data = rng.choice(bases)
        if rng.random() < 0.15:  # a fresh valid encoding of another size and content
            fmt, ext, modes = rng.choice(_FORMATS)
            fresh = encode(rng, fmt, rng.choice(modes), (rng.randint(1, 300), rng.randint(1, 300)))
            if fresh is None:
                continue
            add(f"valid_{len(corpus.inputs):05d}{ext}", fresh, f"valid {fmt}")
            continue
        kind, mutated = mutate_image(rng, data, fmt)
        if rng.random() < 0.1:  # mutations pile up
            kind, mutated = mutate_image(rng, mutated, fmt)
            kind = "mixed"
        add(f"m_{len(corpus.inputs):05d}_{kind}{ext}", mutated, kind)
    return corpus


# -- models -----------------------------------------------------------------------------------------

_SCALES = [float("inf"), float("-inf"), float("nan"), 0.0, -1.0, -1e-3, 1e30, 1e-30, 1e-45, 3.4e38]


def mutate_model(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """One mutation of a .tflite: ``(kind, bytes)``."""
    from litecls.export import flatbuffer

    kind = rng.choice(["bitflip", "bitflip_tables", "truncate", "overwrite", "zero_run", "scale", "scale",
                       "scale_output", "zero_point", "shape", "type", "opcode", "rewire", "remove_op",
                       "features_output"])
    buf = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.choice([1, 3, 10, 100])):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return kind, bytes(buf)
    if kind == "bitflip_tables":  # the tables sit at both ends; the weights in the middle
        for _ in range(rng.choice([1, 2, 5])):
            i = rng.randrange(4096) if rng.random() < 0.5 else len(buf) - 1 - rng.randrange(65536)
            buf[i] ^= 1 << rng.randrange(8)
        return kind, bytes(buf)
    if kind == "truncate":
        return kind, bytes(buf[:rng.randrange(8, len(buf))])
    if kind in ("overwrite", "zero_run"):
        start = rng.randrange(len(buf))
        run = rng.choice([1, 8, 159, 4096])
        end = min(len(buf), start + run)
        buf[start:end] = rng.randbytes(end - start) if kind == "overwrite" else bytes(end - start)
        return kind, bytes(buf)
    model = flatbuffer.read(data)
    graph = model.subgraphs[0]
    quantized = [t for t in graph.tensors if t.quantization is not None and t.quantization.scale is not None
                 and len(t.quantization.scale)]
    if kind.startswith("scale") or kind == "zero_point":
        if not quantized:
            kind = "shape"
        else:
            tensor = graph.tensors[graph.outputs[0]] if kind == "scale_output" and \
                graph.tensors[graph.outputs[0]] in quantized else rng.choice(quantized)
            if kind == "zero_point":
                tensor.quantization.zeroPoint = [rng.choice([-1000, 1000, 2**31 - 1, -(2**31)])] * \
                    len(tensor.quantization.zeroPoint if tensor.quantization.zeroPoint is not None else [0])
            else:
                scales = list(tensor.quantization.scale)
                scales[rng.randrange(len(scales))] = rng.choice(_SCALES)
                tensor.quantization.scale = scales
    if kind == "shape":
        tensor = rng.choice(graph.tensors)
        if tensor.shape is not None and len(tensor.shape):
            shape = list(tensor.shape)
            shape[rng.randrange(len(shape))] = rng.choice([0, 1, 3, 4, 1280, 100000, -1])
            tensor.shape = np.array(shape, dtype=np.int32)
    elif kind == "type":
        tensor = rng.choice(graph.tensors)
        tensor.type = rng.choice([0, 1, 2, 3, 4, 7, 9, 10, 17])
    elif kind == "opcode":
        op = rng.choice(graph.operators)
        op.opcodeIndex = rng.randrange(len(model.operatorCodes))
    elif kind == "rewire":
        op = rng.choice(graph.operators)
        if op.inputs is not None and len(op.inputs):
            inputs = list(op.inputs)
            inputs[rng.randrange(len(inputs))] = rng.randrange(len(graph.tensors))
            op.inputs = np.array(inputs, dtype=np.int32)
    elif kind == "remove_op":
        graph.operators.pop(rng.randrange(len(graph.operators)))
    elif kind == "features_output":
        # The pooled features as the output: what a feature extractor looks like.
        pooled = [i for op in graph.operators for i in op.outputs
                  if graph.tensors[i].shape is not None and len(graph.tensors[i].shape) == 2
                  and graph.tensors[i].shape[0] == 1 and graph.tensors[i].shape[-1] in (1280, 1024)]
        if pooled:
            graph.outputs = np.array([pooled[-1]], dtype=np.int32)
            model.signatureDefs = []
        else:
            kind = "features_output_none"
    try:
        return kind, flatbuffer.write(model)
    except Exception:  # the object API cannot serialise the edit: fall back to a bit flip
        buf[rng.randrange(len(buf))] ^= 0x40
        return "bitflip", bytes(buf)


def write_models(folder: Path, sources: list[Path], count: int, seed: int = 0) -> dict[str, str]:
    """Write ``count`` mutated models under ``folder``: ``{path: kind}``.

    A few keep the source's SHA-256 sidecar (expected: refused by the checksum); the rest have
    none, so the runtime checks themselves are exercised.
    """
    from litecls.runtime.integrity import sidecar_path, write_sidecar

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    originals = [(path, path.read_bytes()) for path in sources]
    out: dict[str, str] = {}
    for i in range(count):
        source, data = originals[i % len(originals)]
        kind, mutated = mutate_model(rng, data)
        path = folder / f"model_{i:04d}_{kind}_{source.stem}.tflite"
        path.write_bytes(mutated)
        if i % 20 == 7:  # the original's checksum beside a changed file
            write_sidecar(path, data)
            kind = "sidecar_" + kind
        else:
            sidecar_path(path).unlink(missing_ok=True)
        out[str(path)] = kind
    return out


# -- runners ----------------------------------------------------------------------------------------


@dataclass
class ChildRun:
    """What one child process did: exit status, output, peak memory, time."""

    returncode: int
    stdout: str
    stderr: str
    max_rss_bytes: int
    seconds: float
    timed_out: bool


def peak_rss_kib() -> int:
    """This process's own peak resident memory in KiB: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``exec``: a child forked from a large process (pytest after
    loading many models) starts with the parent's peak. ``VmHWM`` belongs to the child's
    own address space, made at ``exec``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _write_peak() -> None:
    target = os.environ.get(PEAK_FILE_ENV)
    if target:
        Path(target).write_text(str(peak_rss_kib()))


#: The child writes its peak memory (KiB) to this file at exit (see :func:`run_child`).
PEAK_FILE_ENV = "LITECLS_FUZZ_PEAK_FILE"


def run_child(args: list[str], cwd: Path, timeout: float, env: dict | None = None) -> ChildRun:
    """Run ``args`` (a ``tests/fuzzing.py`` command) to the end or ``timeout``.

    Peak memory: what the child reports of its own address space at exit
    (:func:`peak_rss_kib`); for a child that died before reporting, its rusage from ``os.wait4``.
    """
    import tempfile

    started = time.perf_counter()
    with open(os.devnull, "rb") as stdin, _temp() as out, _temp() as err, \
            tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**(env if env is not None else os.environ), PEAK_FILE_ENV: str(peak_file)}
        process = subprocess.Popen(args, cwd=cwd, stdin=stdin, stdout=out, stderr=err, env=env)
        timed_out = False
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                timed_out = True
                break
            time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        try:
            peak_kib = int(peak_file.read_text())
        except (OSError, ValueError):
            peak_kib = usage.ru_maxrss
        return ChildRun(process.returncode, out.read().decode("utf-8", "surrogateescape"),
                        err.read().decode("utf-8", "replace"), peak_kib * 1024,
                        time.perf_counter() - started, timed_out)


def _temp():
    import tempfile

    return tempfile.TemporaryFile()


def child_env() -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def cli_images(model: str, names: list[str], cwd: Path, per_file_s: float = 5.0,
               workers: int = 2) -> ChildRun:
    """``litecls classify --json`` over ``names`` in one child process."""
    args = [sys.executable, str(Path(__file__).resolve()), "cli", "classify", "--json", "--workers",
            str(workers), "--model", model, "--", *names]
    return run_child(args, cwd, 60 + per_file_s * len(names), child_env())


def api_images(model: str, names: list[str], cwd: Path, per_file_s: float = 5.0) -> ChildRun:
    """:meth:`ImageClassifier.classify` on each of ``names`` in one child, one JSON line each."""
    args = [sys.executable, str(Path(__file__).resolve()), "images-api", model, *names]
    return run_child(args, cwd, 60 + per_file_s * len(names), child_env())


def api_models(image: str, models: list[str], cwd: Path, per_model_s: float = 20.0) -> ChildRun:
    """Load each model with the Python API and with the CLI's code, in one child."""
    args = [sys.executable, str(Path(__file__).resolve()), "models", image, *models]
    return run_child(args, cwd, 60 + per_model_s * len(models), child_env())


def rows_by_file(stdout: str) -> Counter:
    """How many JSON rows each ``"file"`` got (summary rows of videos excluded)."""
    counts: Counter = Counter()
    for line in stdout.splitlines():
        if line.strip():
            row = json.loads(line)
            if "summary" not in row:
                counts[row["file"]] += 1
    return counts


def outcome_counts(stdout: str) -> Counter:
    """Rows by outcome: "ok" or the error row's first words after the file name."""
    counts: Counter = Counter()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "error" in row:
            text = row["error"]
            text = text[len(row["file"]) + 2:] if text.startswith(row["file"]) else text
            counts["error: " + _outcome_key(text)] += 1
        elif "outcome" in row:
            counts[row["outcome"]] += 1
        else:
            counts["ok"] += 1
    return counts


def _outcome_key(text: str) -> str:
    """Group error messages: numbers and quoted details out."""
    import re

    text = re.sub(r"\(.*", "", text)
    text = re.sub(r"[\d,.]+", "N", text)
    return " ".join(text.split()[:8])


# -- children ---------------------------------------------------------------------------------------


def _child_images(model: str, names: list[str]) -> int:
    from litecls.cli.main import configure_output
    from litecls.errors import ImageError
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    configure_output(False)
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model)) as classifier:
        for name in names:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                classifier.classify(name)
                row = {"file": name, "outcome": "ok"}
            except ImageError as exc:
                row = {"file": name, "error": str(exc)}
            row["cpu_s"] = round(time.process_time() - cpu, 4)
            row["wall_s"] = round(time.perf_counter() - wall, 4)
            row["rss_kib"] = peak_rss_kib()
            print(json.dumps(row), flush=True)
    return 0


def _child_models(image: str, models: list[str]) -> int:
    """Per model: the API (create + classify), then ``litecls classify`` and ``models info`` in-process."""
    import contextlib
    import traceback

    from litecls.cli.main import configure_output, main
    from litecls.errors import LiteclsError
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    configure_output(False)
    for model in models:
        print(json.dumps({"begin": model}), flush=True)
        row: dict = {"file": model}
        try:
            with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model)) as classifier:
                classifier.classify(image)
            row["outcome"] = "api ok"
        except (LiteclsError, ValueError) as exc:
            row["outcome"] = "api refused: " + type(exc).__name__
            row["message"] = str(exc)
        except Exception:  # the failure the fuzz looks for
            row["outcome"] = "api traceback"
            row["traceback"] = traceback.format_exc()
        for argv, key in ((["classify", "--json", "--model", model, image], "cli"),
                          (["models", "info", model], "info")):
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    status = main(argv)
            except SystemExit as exc:
                status = exc.code
            except Exception:
                status = "traceback"
                row[f"{key}_traceback"] = traceback.format_exc()
            row[f"{key}_status"] = status
            row[f"{key}_stderr"] = err.getvalue()[-2000:]
            if key == "cli":
                row["cli_rows"] = sum(1 for line in out.getvalue().splitlines() if line.startswith("{"))
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    import atexit

    atexit.register(_write_peak)
    command, first, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "cli":  # ``litecls ARGS``, as ``python -m litecls.cli.main`` runs it
        from litecls.cli.main import main

        sys.exit(main([first, *rest]))
    if command == "images-api":
        sys.exit(_child_images(first, rest))
    if command == "models":
        sys.exit(_child_models(first, rest))
    raise SystemExit(f"unknown command {command!r}")
