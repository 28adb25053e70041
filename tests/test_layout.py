"""Inference never loads training code: the predictors and the Reader import no renderer, font,
text sampler or training module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

INFERENCE = ["scenetext.detection.predictor", "scenetext.recognition.predictor", "scenetext.reader", "scenetext"]


@pytest.mark.parametrize("module", INFERENCE)
def test_inference_modules_load_no_training_or_synthesis_code(module):
    code = (f"import sys, json, {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('scenetext'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       timeout=120).stdout)
    assert module in loaded or module == "scenetext"
    assert not [m for m in loaded if m.startswith(("scenetext.train", "scenetext.synth"))], loaded


def test_reading_a_photo_loads_no_training_or_synthesis_code():
    code = ("import sys, json, numpy as np, scenetext; r = scenetext.Reader(); "
            "r.read(np.full((64, 128, 3), 255, np.uint8)); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('scenetext.train', "
            "'scenetext.synth', 'PIL.ImageFont')))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []
