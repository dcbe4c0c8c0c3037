"""A command that needs a missing extra says which ``pip install`` fixes it, never a traceback.

These run where the extra is missing: in the core install of ``make test-core``
(``scripts/core_env.sh``), which has none of them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from litecls.samples import labelled_imagenet_photos

pytestmark = pytest.mark.core


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def litecls(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litecls.cli.main", *args], capture_output=True,
                          text=True, timeout=300)


def _says_install(done: subprocess.CompletedProcess, extra: str) -> None:
    assert done.returncode == 2, done.stderr
    assert f"pip install 'litecls[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.skipif(not _missing("torch"), reason="PyTorch is installed (the train extra is there)")
def test_train_without_the_train_extra(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
    _says_install(litecls("train", str(tmp_path / "data"), "--output", str(tmp_path / "out")), "train")


@pytest.mark.skipif(not _missing("torch"), reason="PyTorch is installed (the zoo extra is there)")
def test_building_a_zoo_model_without_the_zoo_extra(tmp_path: Path) -> None:
    _says_install(litecls("models", "build", "efficientnet_lite2", "--cache-dir", str(tmp_path)), "zoo")
    photo = labelled_imagenet_photos()[0][0]
    _says_install(litecls("classify", str(photo), "--model", "efficientnet_lite2:float16",
                          "--cache-dir", str(tmp_path)), "zoo")


@pytest.mark.zoo
@pytest.mark.skipif(not _missing("av"), reason="PyAV is installed (the video extra is there)")
def test_a_video_without_the_video_extra(tmp_path: Path, zoo_model) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    done = litecls("classify", str(video), "--model", str(zoo_model("efficientnet_lite0", "int8")))
    assert done.returncode != 0 and "pip install 'litecls[video]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.zoo
@pytest.mark.skipif(not _missing("matplotlib"), reason="matplotlib is installed (the plots extra is there)")
def test_a_confusion_plot_without_the_plots_extra(tmp_path: Path, zoo_model) -> None:
    model = zoo_model("efficientnet_lite0", "int8")
    done = litecls("evaluate", str(model), "--samples", "--confusion", str(tmp_path / "cm.png"))
    _says_install(done, "plots")  # before evaluating anything: no progress lines, one error line


@pytest.mark.skipif(not _missing("ray"), reason="Ray is installed (the ray extra is there)")
def test_bulk_without_the_ray_extra(tmp_path: Path) -> None:
    photo = labelled_imagenet_photos()[0][0]
    _says_install(litecls("bulk", "classify", str(photo.parent), "--output", str(tmp_path / "out")), "ray")
