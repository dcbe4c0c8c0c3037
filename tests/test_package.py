"""The top-level package: the everyday names, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import litecls


@pytest.mark.zoo  # imports litecls.training, the PyTorch side
@pytest.mark.train
def test_top_level_names_are_the_library_objects():
    from litecls.models.zoo import build
    from litecls.tasks import ImageClassifier
    from litecls.training import ImageFolder, train

    assert litecls.train is train and litecls.ImageFolder is ImageFolder
    assert litecls.ImageClassifier is ImageClassifier and litecls.build_model is build
    assert sorted(litecls._EXPORTS) == sorted(n for n in litecls.__all__ if n != "__version__")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = litecls.nope


@pytest.mark.core
def test_import_litecls_does_not_load_torch():
    code = "import sys, litecls; print('torch' in sys.modules, 'ai_edge_litert' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
