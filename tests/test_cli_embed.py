"""``litecls embed`` and ``litecls similar`` on real photos with the zoo's EfficientNet-Lite0 embedders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from photos import agreement_photos
from PIL import Image, ImageOps

from litecls.cli.main import main
from litecls.samples import labelled_imagenet_photos
from litecls.similarity import index_folder, nearest
from litecls.tasks import ImageEmbedder, ImageEmbedderOptions

pytestmark = pytest.mark.zoo


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Six real photos, one file that is not an image."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for path, _ in labelled_imagenet_photos()[:6]:
        (photos / path.name).write_bytes(path.read_bytes())
    (photos / "notes.jpg").write_text("not a photo")
    return photos


@pytest.fixture()
def cache(tmp_path, zoo_embedding) -> Path:
    """A cache folder holding the zoo's EfficientNet-Lite0 int8 embedding file (as ``--model`` finds it)."""
    built = zoo_embedding("efficientnet_lite0", "int8")
    folder = tmp_path / "cache"
    folder.mkdir()
    for suffix in ("", ".sha256"):
        (folder / (built.name + suffix)).write_bytes(Path(f"{built}{suffix}").read_bytes())
    return folder


def _expected(cache: Path, paths: list[Path]) -> np.ndarray:
    model = cache / "efficientnet_lite0-embedding-int8.tflite"
    options = ImageEmbedderOptions(model_path=model, l2_normalize=True)
    with ImageEmbedder.create_from_options(options) as embedder:
        return np.stack([embedder.embed(p).embedding for p in paths])


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".parquet"])
def test_embed_writes_every_readable_image_and_reports_the_rest(folder, cache, tmp_path, suffix,
                                                                capsys) -> None:
    out = tmp_path / f"vectors{suffix}"
    missing = folder / "missing.png"
    status = main(["embed", str(folder), str(missing), "--output", str(out), "--cache-dir", str(cache),
                   "--batch-size", "4"])
    assert status == 1
    err = capsys.readouterr().err
    assert "notes.jpg: not an image file" in err and "missing.png: no such file" in err
    assert "6 of 8 images embedded (1280 values each)" in err
    good = sorted(p for p in folder.iterdir() if p.name != "notes.jpg")
    expected = _expected(cache, good)
    if suffix == ".npy":
        vectors, sidecar = np.load(out), json.loads(out.with_suffix(".json").read_text())
        paths, errors = sidecar["paths"], sidecar["errors"]
    elif suffix == ".npz":
        with np.load(out) as data:
            vectors, paths, errors = data["embeddings"], list(data["paths"]), list(data["error_paths"])
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(out).to_pylist()
        assert [row["path"] for row in table] == [str(p) for p in sorted(folder.iterdir())] + [str(missing)]
        rows = [row for row in table if row["error"] is None]
        vectors = np.array([row["embedding"] for row in rows], np.float32)
        paths = [row["path"] for row in rows]
        errors = [row["path"] for row in table if row["error"] is not None]
        assert all(row["embedding"] is None for row in table if row["error"] is not None)
    assert paths == [str(p) for p in good]
    assert sorted(errors) == sorted([str(missing), str(folder / "notes.jpg")])
    assert vectors.shape == (6, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_refuses_an_unknown_output_format(folder, tmp_path, capsys) -> None:
    assert main(["embed", str(folder), "--output", str(tmp_path / "vectors.csv")]) == 2
    assert "--output must end in .npy, .npz, .parquet" in capsys.readouterr().err


def test_similar_lists_the_modified_copy_first_and_caches_the_folder(folder, cache, tmp_path, capsys) -> None:
    original = sorted(folder.glob("imagenet_*.jpg"))[2]
    query = tmp_path / "query.jpg"
    ImageOps.mirror(Image.open(original).convert("RGB")).save(query, quality=75)
    args = ["similar", str(query), str(folder), "--top", "3", "--cache-dir", str(cache), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["nearest"][0]["path"] == str(original) and first["nearest"][0]["similarity"] > 0.9
    assert len(first["nearest"]) == 3 and first["nearest"][1]["similarity"] < 0.5
    assert first["searched"] == 6 and list(first["errors"]) == [str(folder / "notes.jpg")]
    [cached] = (cache / "embeddings").glob("*.npz")
    stamp = cached.stat().st_mtime_ns
    assert main(args) == 0  # nothing changed: the cache is read, not rewritten
    assert json.loads(capsys.readouterr().out)["nearest"] == first["nearest"]
    assert cached.stat().st_mtime_ns == stamp
    assert main(["similar", str(folder / "notes.jpg"), str(folder), "--cache-dir", str(cache)]) == 2


def _photo_folder(root: Path) -> tuple[list[Path], list[Path]]:
    """>= 200 real photos (the 58 agreement photos and the four quarters of each) and a modified copy of each.

    Copies alternate: mirrored, JPEG quality 75, mirrored and JPEG q75.
    """
    originals, copies = [], []
    (root / "photos").mkdir()
    for i, path in enumerate(agreement_photos()):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        views = [image] + [image.crop(box) for box in ((0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2),
                                                         (0, h // 2, w // 2, h), (w // 2, h // 2, w, h))]
        for k, view in enumerate(views):
            name = f"{i:02d}_{k}"
            target = root / "photos" / f"{name}.png"
            view.save(target)
            originals.append(target)
            kind = (i * 5 + k) % 3
            copy = ImageOps.mirror(view) if kind != 1 else view
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=75 if kind else 95)
            copies.append(root / "photos" / f"{name}_copy.jpg")
            copies[-1].write_bytes(buffer.getvalue())
    return originals, copies


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_similar_finds_each_photos_copy_first_among_hundreds(zoo_embedding, tmp_path, precision) -> None:
    originals, copies = _photo_folder(tmp_path)
    assert len(originals) >= 200
    model = zoo_embedding("efficientnet_lite0", precision)
    with ImageEmbedder.create_from_model_path(str(model)) as embedder:
        found = index_folder(embedder, tmp_path / "photos", "test", workers=2)
    assert not found.errors and len(found.paths) == 2 * len(originals)
    rows = {path: row for row, path in enumerate(found.paths)}
    misses, margins = [], []
    for original, copy in zip(originals, copies, strict=True):
        ranked = nearest(found, found.vectors[rows[copy]], top=2, exclude=copy)
        if ranked[0][0] != original:
            misses.append((copy.name, ranked[0][0].name))
        margins.append(ranked[0][1] - ranked[1][1])
    print(f"\n{model.name}: {len(originals) - len(misses)} of {len(originals)} copies found their photo "
          f"first; "
          f"median margin over the runner-up {np.median(margins):.3f}")
    assert not misses, misses
