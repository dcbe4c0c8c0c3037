"""The README's image policy on real photos: DCT-scaled JPEG decoding, CMYK, RGBA on white,
palette and 16-bit images, and the squash resize.

Each check compares litecls's result with what Pillow computes from the same pixels by the
documented rule, so a change of rule fails here.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litecls.processing.image import load_image, open_image, prepare_image, resize_and_crop
from litecls.samples import demo_photos

pytestmark = pytest.mark.core

SIZE = (224, 224)
CROP = 0.875


def photo(name: str = "coffee.png") -> Image.Image:
    """One of the scikit-image sample photos (coffee: 600x400 RGB), as RGB."""
    path = next(p for p in demo_photos() if p.name == name)
    with Image.open(path) as image:
        return image.convert("RGB")


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def test_large_jpeg_is_decoded_at_reduced_size_but_never_below_twice_the_target(tmp_path: Path):
    big = photo().resize((4000, 2667), Image.Resampling.BICUBIC)  # a 10.7-megapixel photo
    path = save(big, tmp_path / "big.jpg", quality=92)
    draft = (int(2 * SIZE[1] / CROP), int(2 * SIZE[0] / CROP))  # what prepare_image asks for: 512x512
    decoded = open_image(path, draft)
    # DCT scaling divides by 1, 2, 4 or 8: 1/4 gives 1000x667, 1/8 would go below 512 pixels.
    assert decoded.size == (1000, 667)
    assert open_image(path).size == (4000, 2667)  # without a draft size: the full image
    # The reduced decode barely changes the model's input.
    full = as_array(resize_and_crop(load_image(path), SIZE, CROP, "bicubic"))
    fast = as_array(prepare_image(path, SIZE, crop_pct=CROP, interpolation="bicubic"))
    assert np.abs(full - fast).mean() < 1.5


def test_small_jpeg_is_decoded_whole(tmp_path: Path):
    path = save(photo(), tmp_path / "small.jpg", quality=92)  # 600x400: no 1/2 scale keeps 512
    assert open_image(path, (512, 512)).size == (600, 400)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path):
    rgb = photo()
    path = save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as stored:
        assert stored.mode == "CMYK"
    got = as_array(prepare_image(path, SIZE, crop_pct=CROP))
    expected = as_array(resize_and_crop(rgb, SIZE, CROP))
    assert got.shape == (*SIZE, 3)
    assert np.abs(got - expected).mean() < 3  # JPEG's loss only


def test_rgba_is_flattened_on_white(tmp_path: Path):
    rgb = photo()
    width, height = rgb.size
    # Alpha 0 on the left third, 50 % in the middle third, opaque on the right third.
    alpha = np.zeros((height, width), np.uint8)
    alpha[:, width // 3: 2 * width // 3] = 128
    alpha[:, 2 * width // 3:] = 255
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(alpha))
    path = save(rgba, tmp_path / "rgba.png")
    got = as_array(load_image(path))
    a = alpha[..., None].astype(np.float64) / 255
    expected = as_array(rgb) * a + 255 * (1 - a)
    assert np.abs(got - expected).max() <= 1  # Pillow's integer compositing rounds
    assert (got[:, : width // 3] == 255).all()  # transparent: white, not black
    assert (got[:, 2 * width // 3:] == as_array(rgb)[:, 2 * width // 3:]).all()


def test_palette_images_use_their_colours_and_transparency(tmp_path: Path):
    palette = photo().quantize(64)
    path = save(palette, tmp_path / "palette.png")
    assert (as_array(load_image(path)) == as_array(palette.convert("RGB"))).all()
    # A transparent palette entry is white, like an RGBA image's transparent pixels.
    index = int(np.bincount(np.asarray(palette).ravel()).argmax())
    transparent = save(palette, tmp_path / "palette-t.png", transparency=index)
    got = as_array(load_image(transparent))
    hidden = np.asarray(palette) == index
    assert (got[hidden] == 255).all()
    assert (got[~hidden] == as_array(palette.convert("RGB"))[~hidden]).all()


def test_16_bit_greyscale_is_scaled_to_8_bits(tmp_path: Path):
    grey = np.asarray(photo().convert("L"), dtype=np.uint16)
    sixteen = Image.fromarray(grey * 257)  # the full 16-bit range: 0..65535
    path = save(sixteen, tmp_path / "grey16.png")
    with Image.open(path) as stored:
        assert stored.mode.startswith("I")
    got = as_array(load_image(path))
    assert got.shape == (*grey.shape, 3)
    assert (got == grey[..., None]).all()  # scaled (>> 8), not clipped to white
    assert (as_array(load_image(path, channels=1)) == grey).all()


def test_squash_resizes_the_whole_photo_ignoring_aspect(tmp_path: Path):
    rgb = photo()  # 600x400
    path = save(rgb, tmp_path / "wide.png")
    squashed = prepare_image(path, SIZE, policy="squash")
    assert (squashed == np.asarray(rgb.resize(SIZE[::-1], Image.Resampling.BILINEAR))).all()
    cropped = prepare_image(path, SIZE, crop_pct=1.0)
    # The crop policy keeps the aspect ratio: the centre 400x400 square, scaled (resampled with
    # its neighbours, so the edges differ a little from scaling the cut-out square).
    centre = as_array(rgb.crop((100, 0, 500, 400)).resize(SIZE[::-1], Image.Resampling.BILINEAR))
    assert np.abs(as_array(cropped) - centre)[2:-2, 2:-2].max() <= 2
    assert not np.array_equal(squashed, cropped)
    with pytest.raises(ValueError, match="unknown resize policy"):
        prepare_image(path, SIZE, policy="stretch")


def test_in_memory_bytes_follow_the_same_policy():
    buffer = io.BytesIO()
    photo().convert("CMYK").save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    assert (prepare_image(data, SIZE, crop_pct=CROP) == prepare_image(Image.open(io.BytesIO(data)), SIZE,
                                                                     crop_pct=CROP)).all()
