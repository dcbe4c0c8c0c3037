"""Near-duplicate search over a folder with an image embedder: embed once, cache, rank by cosine similarity.

For thousands of photos a brute-force matrix product over L2-normalised
vectors takes milliseconds, so no index server is needed. The folder's
vectors are cached in one ``.npz`` per (folder, model) under the litecls cache,
keyed by each file's path, size and modification time: a rerun embeds only
new or changed files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litecls.imagefiles import images_under
from litecls.tasks.embedding_result import l2_normalized
from litecls.tasks.image_embedder import ImageEmbedder

#: Bump when the cache layout changes.
_CACHE_FORMAT = 1


@dataclass
class EmbeddedImages:
    """Vectors of the images that could be read (``paths[i]`` -> ``vectors[i]``), and the errors of the rest.

    ``vectors``: float32 ``[N, D]``, L2-normalised; ``errors``: path -> message.
    """

    paths: list[Path]
    vectors: np.ndarray
    errors: dict[Path, str] = field(default_factory=dict)


def embed_paths(embedder: ImageEmbedder, paths: Iterable[Path], workers: int = 2,
                batch_size: int = 8, on_error: Callable[[Path, str], None] | None = None) -> EmbeddedImages:
    """Embed image files; a file that cannot be read is recorded (and reported) and the rest go on.

    Args:
        embedder: an IMAGE-mode embedder.
        paths: the image files.
        workers: decoding threads.
        batch_size: images per invoke.
        on_error: called with each bad file and its message as it is met.

    Returns:
        The vectors (L2-normalised float32) and the errors.
    """
    good, vectors, errors = [], [], {}
    for path, vector in embedder.embed_many(list(paths), workers=workers, batch_size=batch_size):
        if isinstance(vector, Exception):
            errors[path] = str(vector)
            if on_error is not None:
                on_error(path, str(vector))
        else:
            good.append(path)
            vectors.append(vector)
    matrix = np.stack(vectors) if vectors else np.zeros((0, embedder.dimension), np.float32)
    return EmbeddedImages(good, l2_normalized(matrix), errors)


def _cache_file(cache_root: Path, folder: Path, model_digest: str) -> Path:
    key = hashlib.sha256(f"{_CACHE_FORMAT}\0{folder.resolve()}\0{model_digest}".encode()).hexdigest()[:24]
    return cache_root / "embeddings" / f"{key}.npz"


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _load_cache(file: Path) -> dict[str, tuple[int, int, np.ndarray]]:
    try:
        with np.load(file, allow_pickle=False) as data:
            return {str(p): (int(s), int(m), v) for p, s, m, v in
                    zip(data["paths"], data["sizes"], data["mtimes"], data["vectors"], strict=True)}
    except (OSError, ValueError, KeyError):  # missing, damaged or from another layout: embed again
        return {}


def _save_cache(file: Path, found: EmbeddedImages) -> None:
    from io import BytesIO

    from litecls.models.zoo import atomic_write

    stamps = [_stamp(p) for p in found.paths]
    buffer = BytesIO()
    np.savez(buffer, paths=np.array([str(p) for p in found.paths], dtype=str),
             sizes=np.array([s for s, _ in stamps], np.int64),
             mtimes=np.array([m for _, m in stamps], np.int64), vectors=found.vectors)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, buffer.getvalue())


def index_folder(embedder: ImageEmbedder, folder: str | os.PathLike, model_digest: str,
                 cache_root: Path | None = None, follow_links: bool = False, workers: int = 2,
                 on_error: Callable[[Path, str], None] | None = None) -> EmbeddedImages:
    """The vectors of every image under ``folder``, reusing the cached ones of unchanged files.

    Args:
        embedder: an IMAGE-mode embedder.
        folder: searched recursively (hidden files skipped).
        model_digest: identifies the model (its file's SHA-256): another model, another cache.
        cache_root: the litecls cache folder; ``None``: no cache.
        follow_links: walk links to folders.
        workers: decoding threads.
        on_error: called with each bad file and its message.

    Returns:
        The folder's images in sorted order (those that could be read) and the errors.
    """
    paths = images_under(folder, follow_links=follow_links)
    file = _cache_file(cache_root, Path(folder), model_digest) if cache_root is not None else None
    cached = _load_cache(file) if file is not None else {}
    known, fresh = {}, []
    for path in paths:
        entry = cached.get(str(path))
        if entry is not None and entry[:2] == _stamp(path):
            known[path] = entry[2]
        else:
            fresh.append(path)
    new = embed_paths(embedder, fresh, workers=workers, on_error=on_error)
    known.update(zip(new.paths, new.vectors, strict=True))
    order = [p for p in paths if p in known]
    vectors = np.stack([known[p] for p in order]) if order else np.zeros((0, embedder.dimension), np.float32)
    found = EmbeddedImages(order, vectors.astype(np.float32), new.errors)
    if file is not None and (new.paths or len(order) != len(cached)):
        _save_cache(file, found)
    return found


def nearest(found: EmbeddedImages, query: np.ndarray, top: int = 10,
            exclude: Path | None = None) -> list[tuple[Path, float]]:
    """The ``top`` images most similar to ``query`` (cosine similarity, highest first).

    Args:
        found: the searched images.
        query: the query's vector (any scale).
        top: how many to return.
        exclude: a file to leave out (the query itself, when it lies in the folder).

    Returns:
        ``(path, similarity)`` pairs.
    """
    if not len(found.paths):
        return []
    scores = found.vectors @ l2_normalized(query.reshape(-1))
    skip = exclude.resolve() if exclude is not None else None
    ranked = []
    for i in np.argsort(-scores, kind="stable"):
        if skip is not None and found.paths[i].resolve() == skip:
            continue
        ranked.append((found.paths[i], float(scores[i])))
        if len(ranked) == top:
            break
    return ranked
