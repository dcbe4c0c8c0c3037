"""``litecls embed`` (images -> vectors file) and ``litecls similar`` (the nearest images in a folder)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from litecls.cli.classify_cmd import expand_inputs, printable

#: Output formats of ``litecls embed`` by file suffix.
FORMATS = (".npy", ".npz", ".parquet")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``embed`` and ``similar`` commands."""
    p = commands.add_parser("embed", help="turn images into embedding vectors (.npy, .npz or .parquet)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and folders (recursive)")
    p.add_argument("--output", "-o", required=True, metavar="FILE",
                   help="vectors.npy (an [N, D] float32 array plus FILE.json with the paths and errors), "
                        "vectors.npz (arrays 'embeddings' and 'paths'), or vectors.parquet (columns path, "
                        "embedding, error; needs pip install 'litecls[parquet]')")
    _common(p)
    p.add_argument("--l2-normalize", action=argparse.BooleanOptionalAction, default=True,
                   help="unit-length vectors (default: yes)")
    p.set_defaults(func=cmd_embed)

    s = commands.add_parser("similar", help="the images in a folder most similar to a query image")
    s.add_argument("query", metavar="QUERY", help="the query image")
    s.add_argument("folder", metavar="FOLDER", help="the folder to search (recursive)")
    s.add_argument("--top", "-n", type=int, default=10, help="how many to list (default 10)")
    s.add_argument("--no-cache", action="store_true",
                   help="embed the whole folder again (default: reuse the vectors of unchanged files)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(s)
    s.set_defaults(func=cmd_similar)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="efficientnet_lite0",
                   help="an embedder .tflite or a zoo model NAME[:PRECISION] (its embedding file; "
                        "default: efficientnet_lite0, int8)")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)")
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="images per invoke (default 8)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.add_argument("--follow-links", action="store_true", help="walk links to folders")
    p.add_argument("--verbose", "-v", action="store_true", help="also show Pillow's and LiteRT's messages")


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _model_file(ref: str, cache_dir: str | None) -> Path:
    """The embedder file of ``ref``: a path as given, or the zoo's embedding file (built, with progress)."""
    if "/" in ref or os.sep in ref or ref.endswith(".tflite") or Path(ref).exists():
        return Path(ref)
    from litecls.models.zoo import build_embedding, parse_model_ref

    name, precision = parse_model_ref(ref)  # an unknown name: UnknownModelError, listing the zoo
    return build_embedding(name, precision, cache=cache_dir, progress=_progress)


def _embedder(args: argparse.Namespace, l2_normalize: bool):
    """``(model file, embedder)``; a classifier (e.g. from ``litecls train``) embeds its pooled features."""
    from litecls.export.embedding import embedder_bytes
    from litecls.runtime.interpreter import read_model_bytes
    from litecls.tasks import BaseOptions, ImageEmbedder, ImageEmbedderOptions

    path = _model_file(args.model, args.cache_dir)
    data, _name = read_model_bytes(path)
    options = ImageEmbedderOptions(base_options=BaseOptions(model_asset_buffer=embedder_bytes(data)),
                                   num_threads=args.threads, l2_normalize=l2_normalize)
    return path, ImageEmbedder.create_from_options(options)


def _say_error(name: str, message: str) -> None:
    print(f"litecls: cannot embed: {printable(message if name in message else f'{name}: {message}')}",
          file=sys.stderr, flush=True)


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed every input and write the vectors; exit 1 if any input could not be embedded."""
    out = Path(args.output)
    if out.suffix.lower() not in FORMATS:
        print(f"litecls: error: --output must end in {', '.join(FORMATS)}, got {out.name!r}", file=sys.stderr)
        return 2
    if out.suffix.lower() == ".parquet":
        from litecls.extras import require_extra

        require_extra("parquet", "writing a .parquet file")
    items = expand_inputs(args.inputs, follow_links=args.follow_links)
    for item in items:
        if item.error is not None:
            _say_error(item.name, item.error)
    readable = [item for item in items if item.error is None and not item.video]
    for item in items:
        if item.video:
            item.error = f"{item.name}: is a video; embed its frames as images"
            _say_error(item.name, item.error)
    started = time.perf_counter()
    model, embedder = _embedder(args, args.l2_normalize)
    rows: dict[str, np.ndarray | str] = {}
    with embedder:
        stream = embedder.embed_many([item.name for item in readable], workers=args.workers,
                                     batch_size=args.batch_size)
        for name, vector in stream:
            rows[name] = str(vector) if isinstance(vector, Exception) else vector
            if isinstance(vector, Exception):
                _say_error(name, str(vector))
        dimension = embedder.dimension
    ordered = [(item.name, item.error if item.error is not None else rows[item.name]) for item in items]
    _write(out, ordered, dimension, str(model))
    failures = sum(isinstance(value, str) for _name, value in ordered)
    print(f"{len(ordered) - failures} of {len(ordered)} images embedded ({dimension} values each) in "
          f"{time.perf_counter() - started:.2f} s -> {out}"
          f"{f'; {failures} could not be read' if failures else ''}", file=sys.stderr)
    return 1 if failures else 0


def _write(out: Path, rows: list[tuple[str, np.ndarray | str]], dimension: int, model: str) -> None:
    """Write ``(name, vector or error message)`` rows in the format ``out``'s suffix names."""
    good = [(name, value) for name, value in rows if not isinstance(value, str)]
    matrix = (np.stack([v for _n, v in good]).astype(np.float32) if good
              else np.zeros((0, dimension), np.float32))
    errors = {name: value for name, value in rows if isinstance(value, str)}
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        np.save(out, matrix)
        sidecar = {"model": model, "dimension": dimension, "paths": [n for n, _v in good], "errors": errors}
        out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    elif suffix == ".npz":
        np.savez(out, embeddings=matrix, paths=np.array([n for n, _v in good], dtype=str),
                 error_paths=np.array(list(errors), dtype=str),
                 errors=np.array(list(errors.values()), dtype=str), model=np.array(model))
    else:
        _write_parquet(out, rows, dimension, model)


def _write_parquet(out: Path, rows: list[tuple[str, np.ndarray | str]], dimension: int, model: str) -> None:
    """Columns ``path``, ``embedding`` (fixed-size list of float32, null on error), ``error``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    blank = np.zeros(dimension, np.float32)
    flat = np.concatenate([blank[:0], *[blank if isinstance(v, str) else np.asarray(v, np.float32)
                                        for _n, v in rows]])
    failed = pa.array([isinstance(v, str) for _n, v in rows], pa.bool_())
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dimension, mask=failed)
    table = pa.table({"path": pa.array([n for n, _v in rows], pa.string()), "embedding": vectors,
                      "error": pa.array([v if isinstance(v, str) else None for _n, v in rows], pa.string())},
                     metadata={"model": model})
    pq.write_table(table, out)


def cmd_similar(args: argparse.Namespace) -> int:
    """Print the images under FOLDER nearest to QUERY; exit 2 if the query cannot be read."""
    from litecls.errors import ImageError
    from litecls.models.zoo import cache_dir
    from litecls.runtime.integrity import sha256_hex
    from litecls.similarity import index_folder, nearest

    if args.top < 1:
        print("litecls: error: --top must be at least 1", file=sys.stderr)
        return 2
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"litecls: error: {args.folder}: not a folder", file=sys.stderr)
        return 2
    model, embedder = _embedder(args, True)
    with embedder:
        try:
            query = embedder.embed(args.query).embedding
        except ImageError as exc:
            print(f"litecls: error: {exc}", file=sys.stderr)
            return 2
        found = index_folder(embedder, folder, sha256_hex(model.read_bytes()),
                             None if args.no_cache else cache_dir(args.cache_dir),
                             follow_links=args.follow_links, workers=args.workers,
                             on_error=lambda path, message: _say_error(str(path), message))
    ranked = nearest(found, query, args.top, exclude=Path(args.query))
    if args.json:
        print(json.dumps({"query": args.query, "model": str(model), "searched": len(found.paths),
                          "errors": {str(p): m for p, m in found.errors.items()},
                          "nearest": [{"path": str(p), "similarity": round(s, 6)} for p, s in ranked]}))
        return 0
    print(f"nearest to {printable(args.query)} among {len(found.paths)} images in {printable(args.folder)}:")
    for rank, (path, score) in enumerate(ranked, 1):
        print(f"{rank:4d}  {score:7.4f}  {printable(str(path))}")
    return 0

