"""The web app in a real browser: headless Chromium (Debian's chromium + chromium-driver) with Selenium.

The live camera is Chromium's fake camera fed from a .y4m clip made here of two real photos
(a few seconds each), so the labels on the page must change when the picture does. The test
saves screenshots of both modes in ``.cache/artifacts`` (or ``$LITECLS_ARTIFACTS``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from servers import Server
from support import require

from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

ZooModel = Callable[[str, str], Path]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("LITECLS_ARTIFACTS", REPO / ".cache" / "artifacts"))
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WIDTH, HEIGHT, FPS, SECONDS_EACH = 640, 360, 30, 3

pytestmark = [pytest.mark.serve, pytest.mark.browser, pytest.mark.zoo]


@pytest.fixture(autouse=True, scope="module")
def _browser_installed() -> None:
    """A missing browser skips these tests on a developer's machine and fails them under CI."""
    require(CHROMIUM.exists() and CHROMEDRIVER.exists(),
            "needs Debian's chromium and chromium-driver (make test-data)")


def camera_frame(path: Path) -> np.ndarray:
    """A photo as the fake camera shows it: centre-cropped to 16:9 and resized to 640x360, RGB."""
    with Image.open(path) as image:
        photo = image.convert("RGB")
    width, height = photo.size
    crop_h = min(height, round(width * HEIGHT / WIDTH))
    crop_w = round(crop_h * WIDTH / HEIGHT)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    photo = photo.crop((left, top, left + crop_w, top + crop_h))
    photo = photo.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    return np.asarray(photo)


def write_y4m(path: Path, frames: list[np.ndarray], repeat: int) -> None:
    """Write RGB frames, each shown ``repeat`` times, as a YUV4MPEG2 4:2:0 (JPEG range) clip."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

            def sub(plane: np.ndarray) -> np.ndarray:
                return plane.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))

            planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(cb), sub(cr))]
            for _ in range(repeat):
                out.write(b"FRAME\n")
                for plane in planes:
                    out.write(plane)


@pytest.fixture(scope="module")
def model(zoo_model: ZooModel) -> Path:
    return zoo_model("efficientnet_lite0", "int8")


def label(category) -> str:
    """The name the page shows for a category."""
    return category.display_name or category.category_name or f"class {category.index}"


@pytest.fixture(scope="module")
def clip(model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A clip of the two photos the model is surest about (different classes) and their top-1 labels."""
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model)) as classifier:
        scored = []
        for path, _ in labelled_imagenet_photos():
            frame = camera_frame(path)
            top = classifier.classify(frame).categories[0]
            scored.append((top.score, label(top), frame))
    scored.sort(key=lambda item: -item[0])
    first = scored[0]
    second = next(item for item in scored if item[1] != first[1])
    path = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(path, [first[2], second[2]], FPS * SECONDS_EACH)
    return path, [first[1], second[1]]


@pytest.fixture(scope="module")
def server(model: Path, zoo_cache: Path) -> Iterator[Server]:
    srv = Server("--threads", "2", cache=zoo_cache)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(clip: tuple[Path, list[str]]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,860",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={clip[0]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_an_uploaded_photo_shows_the_classifiers_top_1(browser, server, model) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"), what="the model list")
    photos = [path for path, _ in labelled_imagenet_photos()][:4]
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model)) as classifier:
        expected = [label(classifier.classify(p).categories[0]) for p in photos]
    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
    cards = wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".card")) == len(photos)
                     and browser.find_elements(By.CSS_SELECTOR, ".card"), what="result cards")
    shown = {card.find_element(By.CSS_SELECTOR, ".name").text:
             card.find_element(By.CSS_SELECTOR, ".bar .label").text for card in cards}
    assert shown == {p.name: top for p, top in zip(photos, expected, strict=True)}
    first = cards[0]
    assert "inference" in first.find_element(By.CSS_SELECTOR, ".meta").text
    assert first.find_elements(By.CSS_SELECTOR, ".badge")
    assert console_errors(browser) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serve-upload.png"))


def test_camera_labels_follow_the_video_and_show_the_frame_rate(browser, server, clip) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"), what="the model list")
    browser.find_element(By.ID, "tab-camera").click()
    browser.find_element(By.ID, "camera-start").click()
    seen: list[str] = []
    rates: list[float] = []
    deadline = time.monotonic() + 4 * SECONDS_EACH + 4
    while time.monotonic() < deadline:
        # read in one script: the page replaces these elements with every frame
        shown = browser.execute_script(
            "const li = document.querySelector('#camera-labels li');"
            "return li ? [li.dataset.label, document.getElementById('fps').textContent] : null;")
        if shown:
            top, rate = shown
            if not seen or seen[-1] != top:
                seen.append(top)
            rates.append(float(rate))
        if set(clip[1]) <= set(seen) and len(rates) > 40:
            break
        time.sleep(0.1)
    assert set(clip[1]) <= set(seen), f"expected both {clip[1]} among the camera's top-1 labels, saw {seen}"
    steady = rates[len(rates) // 2:]
    assert max(steady) > 0
    print(f"\ncamera mode: {np.median(steady):.1f} classified frames/s (median of the page's figure), "
          f"top-1 labels seen in order: {seen}")
    assert console_errors(browser) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serve-camera.png"))


def test_the_api_docs_render_offline(browser, server) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/docs")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"), what="Swagger UI")
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/v1/classify" in paths
    assert console_errors(browser) == []
