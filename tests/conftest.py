import os
from pathlib import Path

import pytest

# Keep tests light on a 2-core machine (a model may be training beside them).
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return DATA


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def recognizer():
    """The real recogniser on an untrained CRNN (seeded): tests check behaviour, not text."""
    import torch

    from scenetext.recognition.model import CRNN
    from scenetext.recognition.predictor import Recognizer

    torch.manual_seed(0)
    return Recognizer(CRNN().eval(), name="crnn-untrained")
