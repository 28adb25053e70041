"""The onnxruntime backend: ONNX export of the shipped networks and parity with torch.

Skipped where onnxruntime is not installed (``pip install 'scenetext[onnx]'``; ``make test``
installs it with the dev extras). The real photos (first 20 ICDAR 2015 test images) are used only
to compare the two backends.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'scenetext[onnx]')")

from scenetext import cli, shipped  # noqa: E402
from scenetext.detection.predictor import Detector  # noqa: E402
from scenetext.nn import fold_batchnorm  # noqa: E402
from scenetext.reader import Reader  # noqa: E402
from scenetext.recognition.model import CRNN, CRNNConfig  # noqa: E402
from scenetext.recognition.predictor import Recognizer  # noqa: E402
from scenetext.runtime import resolve_backend  # noqa: E402
from scenetext.runtime.export import NETWORKS, networks_of, read_manifest, weights_digest  # noqa: E402
from scenetext.runtime.folder import REFRESH_COMMAND, shipped_networks  # noqa: E402
from scenetext.runtime.onnxrt import OnnxCRNN, OnnxCTPN, OnnxRuntime  # noqa: E402

from conftest import DATA  # noqa: E402

PHOTOS = DATA / "det" / "ic15_test" / "images"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """The shipped networks exported once by ``scenetext export --onnx``."""
    out = tmp_path_factory.mktemp("onnx")
    result = CliRunner().invoke(cli.main, ["export", "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_export_writes_every_network_with_a_manifest(onnx_dir):
    manifest = read_manifest(onnx_dir)
    assert sorted(manifest) == sorted(NETWORKS)
    for entry in manifest.values():
        assert (onnx_dir / entry.file).stat().st_size > 100_000
    assert manifest["crnn"].config == Recognizer.load().config.to_dict()


def test_export_needs_either_a_checkpoint_or_onnx(tmp_path):
    result = CliRunner().invoke(cli.main, ["export"])
    assert result.exit_code == 2 and "--onnx" in result.output


def test_networks_match_torch_on_padded_batches_of_any_size(onnx_dir):
    det, rec = Detector.load(), Recognizer.load()
    torch_det, torch_rec = copy.deepcopy(det.model), copy.deepcopy(rec.model)
    torch_split = copy.deepcopy(det.word_split._frames.model)
    OnnxRuntime(threads=1, folder=onnx_dir).attach(det, rec)
    assert isinstance(det.model, OnnxCTPN) and isinstance(rec.model, OnnxCRNN)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for h, w in [(64, 96), (320, 208)]:
            x = torch.randn(1, 3, h, w, generator=g)
            want, got = torch_det(x), det.model(x)
            for key in want:
                assert got[key].shape == tuple(want[key].shape)
                assert np.allclose(got[key], want[key].numpy(), atol=1e-4), key
        for torch_net, onnx_net in [(torch_rec, rec.model), (torch_split, det.word_split._frames.model)]:
            for widths in ([128, 128], [200, 64, 12, 8]):
                x = torch.rand(len(widths), 1, 32, max(widths), generator=g) * 2 - 1
                for i, width in enumerate(widths):
                    x[i, :, :, width:] = 0
                widths = torch.tensor(widths)
                want, got = torch_net(x, widths), onnx_net(x, widths)
                for j, frames in enumerate(torch_net.frames(widths).tolist()):
                    # A crop's frames are the same alone or padded in a batch, as with torch.
                    assert np.allclose(got[:frames, j], want[:frames, j].numpy(), atol=1e-4)


def test_a_folder_from_other_weights_is_refused(onnx_dir):
    torch.manual_seed(0)
    other = Recognizer(fold_batchnorm(CRNN(CRNNConfig(variant="medium")).eval()))
    with pytest.raises(ValueError, match="other crnn weights"):
        OnnxRuntime(folder=onnx_dir).attach(recognizer=other)


def test_backend_names_are_checked():
    # onnxruntime is installed here: the shipped models default to it, other weights to torch.
    assert resolve_backend(None) == "onnxruntime" and resolve_backend(None, shipped_models=False) == "torch"
    assert Reader().backend == "onnxruntime" and Reader(lm=False).backend == "onnxruntime"
    assert Reader(detector_weights=shipped.model_path("ctpn")).backend == "torch"
    assert resolve_backend("onnxruntime") == "onnxruntime"
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tensorrt")
    with pytest.raises(ValueError, match="only to the onnxruntime backend"):
        Reader(backend="torch", onnx_dir="somewhere")


@pytest.mark.parametrize("folder", ["exported", "shipped"])
def test_same_text_and_boxes_as_torch_on_real_photos(onnx_dir, folder):
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} is not present")
    photos = sorted(PHOTOS.glob("*.jpg"))[:20]
    assert len(photos) == 20
    # The networks' parity, read greedily: the language prior re-ranks readings near a margin,
    # where the backends' last digits can tip it (checked below). "shipped": the package's own
    # export, loaded without torch.
    torch_reader = Reader(backend="torch", bound_memory=False, lm=False)
    onnx_reader = Reader(backend="onnxruntime", onnx_dir=onnx_dir if folder == "exported" else None,
                         bound_memory=False, lm=False)
    lines = 0
    for want, got in zip(torch_reader.read_many(photos), onnx_reader.read_many(photos)):
        assert [line.text for line in got.lines] == [line.text for line in want.lines], want.path
        for a, b in zip(want.lines, got.lines):
            assert np.abs(np.subtract(a.polygon, b.polygon)).max() <= 1.0, want.path
            assert [w.text for w in a.words] == [w.text for w in b.words]
            for wa, wb in zip(a.words, b.words):
                assert np.abs(np.subtract(wa.polygon, wb.polygon)).max() <= 1.0, want.path
        lines += len(want.lines)
    assert lines >= 20  # the photos have text: the comparison is not vacuous
    assert json.dumps(onnx_reader.models) == json.dumps(torch_reader.models)


def test_default_reading_with_the_prior_agrees_across_backends(onnx_dir):
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} is not present")
    photos = sorted(PHOTOS.glob("*.jpg"))[:20]
    texts = {backend: [line.text for page in Reader(backend=backend, onnx_dir=folder).read_many(photos)
                       for line in page.lines]
             for backend, folder in (("torch", None), ("onnxruntime", onnx_dir))}
    same = sum(a == b for a, b in zip(texts["torch"], texts["onnxruntime"]))
    assert len(texts["torch"]) >= 20 and same >= 0.9 * max(map(len, texts.values()))


def test_the_shipped_export_comes_from_the_shipped_weights():
    # A weights update without 'scenetext export --onnx scenetext/models/onnx' fails here.
    nets = shipped_networks()
    det, rec = Detector.load(), Recognizer.load()
    for name, model in networks_of(det, rec).items():
        path, entry = nets[name]
        assert entry.digest == weights_digest(model), f"{path} is stale: {REFRESH_COMMAND}"
        assert entry.config == model.config.to_dict()


def test_the_digest_names_the_weights_as_stored_not_their_folded_values():
    # Folded weights are computed: they may differ in the last bit from one CPU to another, and
    # the export check must not refuse a folder there. The digest is of the weights before folding.
    from scenetext import checkpoint
    from scenetext.detection.model import CTPN, CTPNConfig

    ck = checkpoint.load(shipped.model_path("ctpn"), kind="ctpn")
    plain = CTPN(CTPNConfig.from_dict(ck["config"])).eval()
    plain.load_state_dict(ck["state_dict"])
    before = weights_digest(plain)
    folded = fold_batchnorm(copy.deepcopy(plain))
    assert weights_digest(folded) == before == weights_digest(Detector.load().model)
    other = copy.deepcopy(plain)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert weights_digest(fold_batchnorm(other)) != before


def test_a_shipped_export_of_other_weights_is_refused(monkeypatch):
    from scenetext.runtime import folder

    def other_weights(name):
        return dataclasses.replace(shipped.find(name), sha256="0" * 64)

    monkeypatch.setattr(folder, "find", other_weights)
    with pytest.raises(shipped.ManifestError, match="other weights than the shipped ctpn.pt.*scenetext export --onnx"):
        Reader(backend="onnxruntime").detector


def test_the_shipped_models_run_on_onnxruntime_without_torch():
    # In a process of its own: this one has torch loaded.
    photo = ROOT / "examples" / "shop-front.jpg"
    code = ("import json, sys\n"
            "from scenetext.reader import Reader\n"
            "reader = Reader(backend='onnxruntime', threads=1, lm=False)\n"
            f"page = reader.read({str(photo)!r})\n"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'models': reader.models,\n"
            "                  'lines': [[line.text, line.polygon] for line in page.lines]}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    torch_reader = Reader(backend="torch", lm=False)
    want = torch_reader.read(photo)
    assert got["models"] == torch_reader.models
    assert [text for text, _ in got["lines"]] == [line.text for line in want.lines]
    assert len(want.lines) >= 2  # the photo has text: the comparison is not vacuous
    for (_, polygon), line in zip(got["lines"], want.lines):
        assert np.abs(np.subtract(polygon, line.polygon)).max() <= 1.0


def test_threads_apply_to_onnxruntime_only():
    with pytest.raises(ValueError, match="threads applies to the onnxruntime backend"):
        Reader(backend="torch", threads=2)
    with pytest.raises(ValueError, match="at least 1"):
        Reader(backend="onnxruntime", threads=0)


def test_run_passes_the_backend_to_the_reader(monkeypatch, tmp_path):
    from PIL import Image

    from helpers import BlobDetector, dark_boxes_image

    options = []

    def make_reader(**given):
        options.append(given)
        return Reader(BlobDetector(), Recognizer(CRNN().eval()), min_confidence=0)

    monkeypatch.setattr(cli, "make_reader", make_reader)
    image = tmp_path / "a.png"
    Image.fromarray(dark_boxes_image()).save(image)
    result = CliRunner().invoke(cli.main, ["run", str(image), "-o", str(tmp_path / "out"), "--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert options[0]["backend"] == "torch" and "onnx_dir" not in options[0]
