"""The command line's preprocessing flags and ``models info`` output (issue 16, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litecls.cli.main import main
from litecls.tasks import ImageClassifier, ImageClassifierOptions

pytestmark = [pytest.mark.core, pytest.mark.zoo]  # core install; reads zoo files from the test cache

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
PHOTOS = [DATA / name for name in ("apple.jpg", "baboon.jpg", "fruits.jpg")]


def test_classify_flags_reach_the_preprocessing(capsys, zoo_model) -> None:
    model = str(zoo_model("mobilenet_v2", "int8"))
    settings = {"resize_policy": "squash", "interpolation": "nearest", "crop_pct": 0.8,
                "display_names_locale": "en"}
    status = main(["classify", "--model", model, "--json", "-k", "3", "--resize-policy", "squash",
                   "--interpolation", "nearest", "--crop-pct", "0.8", "--locale", "en", *map(str, PHOTOS)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and len(lines) == len(PHOTOS)
    flagged = ImageClassifierOptions(model_path=model, max_results=3, **settings)
    default = ImageClassifierOptions(model_path=model, max_results=3)
    with ImageClassifier.create_from_options(flagged) as ours, \
            ImageClassifier.create_from_options(default) as plain:
        assert ours.resize == ("squash", 0.8, "nearest")
        changed = 0
        for line, photo in zip(lines, PHOTOS, strict=True):
            result = ours.classify(photo)
            assert [c["index"] for c in line["categories"]] == [c.index for c in result.categories]
            before = [c.index for c in plain.classify(photo).categories]
            changed += before != [c.index for c in result.categories]
    assert changed  # the flags changed some answer, so they were not ignored
    assert main(["classify", "--model", model, "--crop-pct", "1.5", str(PHOTOS[0])]) == 2
    assert "crop_pct must be in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["classify", "--model", model, "--resize-policy", "stretch", str(PHOTOS[0])])


def test_models_info_prints_plain_integers(capsys, zoo_model) -> None:
    model = zoo_model("mobilenet_v2", "int8")
    assert main(["models", "info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "np.int" not in out and "np.float" not in out
    assert "input tensor:" in out and "[1, 224, 224, 3]" in out and "[1, 1000]" in out

