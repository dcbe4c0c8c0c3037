"""A real two-head classifier: converted from PyTorch with litert_torch, metadata with one label file
per head, classified by litecls.tasks (native and MediaPipe-compatible) and checked against PyTorch.

Needs the train environment (torch, litert_torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litecls.metadata import ModelMetadata, OutputHead, read_metadata, write_metadata
from litecls.tasks import ImageClassifier, ImageClassifierOptions

pytestmark = [pytest.mark.zoo, pytest.mark.train]

torch = pytest.importorskip("torch")
litert_torch = pytest.importorskip("litert_torch")

PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
SIZE = 32
HEADS = {"colour": ["red", "green", "blue"], "texture": ["smooth", "busy", "striped", "dotted", "plain"]}


class TwoHeads(torch.nn.Module):
    """NHWC float input in [-1, 1]; a shared conv trunk; two softmax heads of 3 and 5 classes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                         torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.colour = torch.nn.Linear(8, 3)
        self.texture = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x.permute(0, 3, 1, 2))
        return torch.softmax(self.colour(features) * 4, -1), torch.softmax(self.texture(features) * 4, -1)


@pytest.fixture(scope="module")
def two_head_model(tmp_path_factory) -> tuple[Path, TwoHeads]:
    module = TwoHeads().eval()
    with torch.no_grad():
        flat = bytes(litert_torch.convert(module, (torch.zeros(1, SIZE, SIZE, 3),)).model_content())
    meta = ModelMetadata(name="two heads", mean=[127.5], std=[127.5],
                         heads=[OutputHead(name, labels) for name, labels in HEADS.items()],
                         labels=HEADS["colour"])
    path = tmp_path_factory.mktemp("multi_head") / "two_heads.tflite"
    path.write_bytes(write_metadata(flat, meta))
    return path, module


def test_metadata_keeps_each_heads_name_and_labels(two_head_model) -> None:
    path, _ = two_head_model
    meta = read_metadata(path)
    assert meta is not None and [h.name for h in meta.heads] == list(HEADS)
    assert [h.labels for h in meta.heads] == list(HEADS.values())
    assert meta.labels == HEADS["colour"] and meta.head_name == "colour"
    assert sorted(meta.associated_files) == ["labels.txt", "texture_labels.txt"]


def test_each_head_is_ranked_with_its_own_labels_and_matches_pytorch(two_head_model) -> None:
    path, module = two_head_model
    photo = np.asarray(Image.open(PHOTOS / "fruits.jpg").convert("RGB").resize((SIZE, SIZE)))
    with torch.no_grad():
        pixels = torch.tensor((photo.astype(np.float32) - 127.5) / 127.5)[None]
        expected = [t[0].numpy() for t in module(pixels)]
    options = ImageClassifierOptions(model_path=str(path), max_results=-1)
    with ImageClassifier.create_from_options(options) as classifier:
        assert classifier.head_names == list(HEADS)
        result = classifier.classify(photo)
    assert [(c.head_index, c.head_name) for c in result.classifications] == [(0, "colour"), (1, "texture")]
    assert result.categories is result.classifications[0].categories
    for head, labels, probs in zip(result.classifications, HEADS.values(), expected, strict=True):
        assert len(head.categories) == len(labels)
        for category in head.categories:
            assert category.category_name == labels[category.index]
            assert category.score == pytest.approx(float(probs[category.index]), abs=1e-5)
        assert head.categories[0].index == int(np.argmax(probs))


def test_mediapipe_compat_and_allowlists_cover_every_head(two_head_model) -> None:
    import litecls.compat.mediapipe as mp

    path, _ = two_head_model
    photo = np.asarray(Image.open(PHOTOS / "baboon.jpg").convert("RGB").resize((SIZE, SIZE)))
    options = mp.tasks.vision.ImageClassifierOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(path)), category_allowlist=["red", "busy"])
    with mp.tasks.vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mp.Image(mp.ImageFormat.SRGB, photo))
    assert [[c.category_name for c in h.categories] for h in result.classifications] == [["red"], ["busy"]]


def test_real_mediapipe_reads_the_same_heads_and_scores(two_head_model) -> None:
    mediapipe = pytest.importorskip("mediapipe")

    import litecls.compat.mediapipe as compat

    path, _ = two_head_model
    photo = np.asarray(Image.open(PHOTOS / "apple.jpg").convert("RGB").resize((SIZE, SIZE)))
    results = []
    for mp, image in ((mediapipe, mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=photo)),
                      (compat, compat.Image(compat.ImageFormat.SRGB, photo))):
        base = mp.tasks.BaseOptions(model_asset_path=str(path))
        options = mp.tasks.vision.ImageClassifierOptions(base_options=base)
        with mp.tasks.vision.ImageClassifier.create_from_options(options) as classifier:
            results.append(classifier.classify(image))
    theirs, ours = results
    assert [(h.head_index, h.head_name) for h in ours.classifications] == \
        [(h.head_index, h.head_name) for h in theirs.classifications]
    for a, b in zip(ours.classifications, theirs.classifications, strict=True):
        by_index = {c.index: (c.score, c.category_name) for c in b.categories}
        for c in a.categories:
            assert c.category_name == by_index[c.index][1]
            assert c.score == pytest.approx(by_index[c.index][0], abs=1e-6)
