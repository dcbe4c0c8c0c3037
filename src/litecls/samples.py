"""Real photos that ship inside installed packages, for demos, calibration and tests.

Nothing here is downloaded: foolbox's wheel carries 20 labelled ImageNet
photos (and 20 CIFAR-10 and 20 CIFAR-100 photos), scikit-image and matplotlib
carry a handful of well-known photographs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from litecls.errors import MissingExtraError

_SKIMAGE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg",
                   "motorcycle_left.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg")


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"sample photos need the {pip_name!r} package: "
                                "pip install 'litecls[samples]'")
    return Path(next(iter(spec.submodule_search_locations)))


def labelled_imagenet_photos() -> list[tuple[Path, int]]:
    """The 20 ImageNet validation photos in foolbox's wheel, with their class index."""
    folder = _package_dir("foolbox", "foolbox") / "data"
    photos = []
    for path in sorted(folder.glob("imagenet_*_*.jpg")):
        match = re.fullmatch(r"imagenet_\d+_(\d+)\.jpg", path.name)
        if match:
            photos.append((path, int(match.group(1))))
    return photos


def cifar_photos(which: str = "cifar10") -> list[Path]:
    """foolbox's 20 CIFAR-10 (``cifar10``) or CIFAR-100 (``cifar100``) photos, 32x32 px."""
    folder = _package_dir("foolbox", "foolbox") / "data"
    return sorted(folder.glob(f"{which}_*.png"))


def demo_photos() -> list[Path]:
    """Well-known colour photographs from scikit-image and matplotlib (cat, coffee, rocket...)."""
    skimage = _package_dir("skimage", "scikit-image") / "data"
    photos = [skimage / name for name in _SKIMAGE_PHOTOS if (skimage / name).is_file()]
    matplotlib = importlib.util.find_spec("matplotlib")
    if matplotlib is not None and matplotlib.submodule_search_locations:
        mpl_data = Path(next(iter(matplotlib.submodule_search_locations))) / "mpl-data"
        hopper = mpl_data / "sample_data" / "grace_hopper.jpg"
        if hopper.is_file():
            photos.append(hopper)
    return photos


def calibration_photos() -> list[Path]:
    """Representative photos for int8 calibration: foolbox's 40 CIFAR-10/100 photos.

    Disjoint from the labelled ImageNet photos and the demo photos that
    accuracy and int8-vs-float agreement are measured on, so quantization is
    never tuned on its own test images. The zoo tiles them into 3 x 3 mosaics
    (:func:`litecls.models.zoo.calibration_images`): one thumbnail blown up to
    the whole input is far blurrier than a camera frame, and calibrating on
    the mosaics measured better.
    """
    return cifar_photos("cifar10") + cifar_photos("cifar100")
