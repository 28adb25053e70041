"""`scenetext finetune`: data detection, the schedule, narrow-crop widening and a short real run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from scenetext.cli import main
from scenetext.data.formats import DetSample, RecSample, Region, write_det_set, write_rec_set
from scenetext.recognition.charset import Charset
from scenetext.recognition.model import CRNNConfig
from scenetext.recognition.preprocess import FRAME_STRIDE, min_frames
from scenetext.train.finetune import (
    Candidate,
    DataError,
    FinetuneConfig,
    KeepBest,
    RETAIN_CROPS,
    Quiet,
    blend_states,
    detect_source,
    finetune,
    plan_schedule,
    resolve_models,
    retain_set,
)
from scenetext.train.rec_data import WordSampleSource, needs_widening, widen_for_label

WORDS = ["OPEN", "exit", "Cafe", "24h", "SALE", "north", "Bus", "stop", "Hotel", "menu"]


def _crop(text: str, width: int | None = None) -> np.ndarray:
    w = width or 14 * len(text) + 10
    img = np.full((32, w, 3), 235, np.uint8)
    cv2.putText(img, text, (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 2)
    return img


def _crop_set(folder: Path, n: int) -> Path:
    (folder / "images").mkdir(parents=True)
    samples = []
    for i in range(n):
        text = WORDS[i % len(WORDS)]
        path = folder / "images" / f"w{i:03d}.png"
        cv2.imwrite(str(path), _crop(text))
        samples.append(RecSample(path, text))
    write_rec_set(folder, samples)
    return folder


# ------------------------------------------------------------------------------ detection

def test_detects_each_kind_of_data(tmp_path):
    crops = _crop_set(tmp_path / "crops", 3)
    assert detect_source(crops).kind == "crops"
    assert detect_source(crops / "labels.tsv").kind == "crops"
    photo = tmp_path / "det" / "images" / "p.png"
    photo.parent.mkdir(parents=True)
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    write_det_set(tmp_path / "det", [DetSample(photo, [Region(np.array([[1, 1], [30, 1], [30, 20], [1, 20]]), "AB")])])
    assert detect_source(tmp_path / "det").kind == "icdar"
    paddle = tmp_path / "paddle.txt"
    paddle.write_text('det/images/p.png\t[{"transcription": "AB", "points": [[1,1],[30,1],[30,20],[1,20]]}]\n')
    assert detect_source(paddle).kind == "paddle"
    assert resolve_models(None, [detect_source(paddle)]) == (True, True)
    assert resolve_models(None, [detect_source(crops)]) == (True, False)


def test_data_errors_are_one_line_naming_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: not a data set"):
        detect_source(tmp_path / "empty")
    junk = tmp_path / "junk.txt"
    junk.write_text("justoneword\n")
    with pytest.raises(DataError, match="junk.txt: not a label file"):
        detect_source(junk)
    with pytest.raises(DataError, match="no such file"):
        detect_source(tmp_path / "missing")
    with pytest.raises(DataError, match="needs photos"):
        resolve_models("det", [detect_source(_crop_set(tmp_path / "c", 2))])

    result = CliRunner().invoke(main, ["finetune", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "not a data set" in result.output
    assert not (tmp_path / "out").exists()


def test_a_broken_label_file_is_a_data_error(tmp_path):
    folder = _crop_set(tmp_path / "crops", 2)
    (folder / "labels.tsv").write_text("images/w000.png\tOPEN\nimages/nothere.png\tX\n")
    with pytest.raises(DataError, match=r"labels.tsv:2: image not found"):
        finetune(FinetuneConfig(data=[str(folder)], out=str(tmp_path / "out")), Quiet())


# ------------------------------------------------------------------------------- schedule

def test_schedule_fits_the_time_and_the_data():
    s = plan_schedule(600, 0.5, n_train=100_000, batch_size=64, lr=3e-4, real_ratio=0.6)
    assert s.steps == 1200 and s.limited_by == "time"
    assert 8 <= s.warmup <= 0.06 * s.steps
    small = plan_schedule(600, 0.5, n_train=40, batch_size=64, lr=3e-4, real_ratio=0.6)
    assert small.limited_by == "data" and small.steps < 1200
    capped = plan_schedule(600, 0.5, n_train=100_000, batch_size=64, lr=3e-4, real_ratio=0.6, max_steps=5)
    assert capped.steps == 5 and capped.warmup <= 5


# ------------------------------------------------------------------------------- widening

def test_narrow_crops_are_widened_to_what_their_label_needs():
    charset = CRNNConfig().charset
    ids = charset.encode("MISSISSIPPI")  # two repeated pairs need blanks between them
    arr = np.zeros((32, 16), np.float32)
    widened = widen_for_label(arr, ids)
    assert widened.shape == (32, min_frames(ids) * FRAME_STRIDE)
    assert widen_for_label(np.zeros((32, 200), np.float32), ids).shape == (32, 200)
    assert widen_for_label(arr, charset.encode("x" * 200)) is None
    assert needs_widening(20, 32, "MISSISSIPPI", charset) and not needs_widening(200, 32, "MISSISSIPPI", charset)


def test_a_narrow_real_crop_trains_instead_of_being_skipped(tmp_path):
    path = tmp_path / "narrow.png"
    cv2.imwrite(str(path), _crop("WWWWWWWWWW", width=24))
    source = WordSampleSource(Charset(CRNNConfig().chars), [RecSample(path, "WWWWWWWWWW")], real_ratio=1.0,
                              augment=False)
    item = source(0)
    assert item.image.shape[1] // FRAME_STRIDE >= min_frames(item.ids) and not item.original


def test_train_rec_init_implies_its_variant(tmp_path):
    from scenetext import shipped
    from scenetext.train.recognizer import RecTrainConfig, _model_config

    init = str(shipped.model_path("crnn"))
    assert _model_config(RecTrainConfig(init=init)).variant == "medium"
    assert _model_config(RecTrainConfig(init=init, variant="fast")).variant == "fast"  # shrinking
    assert _model_config(RecTrainConfig()).variant == "small"


# ---------------------------------------------------------------------------- forgetting

def _figures(accuracy: float, retain: float) -> dict:
    return {"accuracy": accuracy, "accuracy_case_sensitive": accuracy, "one_minus_ned": accuracy,
            "retain_accuracy": retain}


def test_weights_that_forget_too_much_are_not_kept():
    keeper = KeepBest(Candidate(_figures(0.40, 0.80), {"w": 0}, 0), max_forgetting=0.01)
    keeper.offer(Candidate(_figures(0.60, 0.795), {"w": 1}, 100))  # within the limit
    assert keeper.best.step == 100 and not keeper.forgot
    assert keeper.wants(_figures(0.70, 0.70))  # better on the user's crops: worth a look
    keeper.offer(Candidate(_figures(0.70, 0.70), {"w": 2}, 200))  # forgets 0.10
    assert keeper.best.step == 100 and keeper.top.step == 200 and keeper.forgot
    assert not keeper.wants(_figures(0.55, 0.80))  # neither the best of all nor better than the kept
    assert not keeper.wants(_figures(0.65, 0.75))  # better than the kept, but forgets
    keeper.offer(Candidate(_figures(0.62, 0.80), {"w": 3}, 300))
    assert keeper.best.step == 300


def test_without_an_original_domain_every_candidate_keeps_it():
    start = {"accuracy": 0.4, "accuracy_case_sensitive": 0.4, "one_minus_ned": 0.5}
    keeper = KeepBest(Candidate(start, {}, 0), max_forgetting=0.0)
    keeper.offer(Candidate({**start, "accuracy": 0.5}, {}, 10))
    assert keeper.best.step == 10 and not keeper.forgot


def test_blends_interpolate_float_weights_and_keep_counters():
    import torch

    start = {"w": torch.zeros(3), "b": torch.full((2,), 4.0, dtype=torch.float16), "n": torch.tensor(5)}
    tuned = {"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.float16), "n": torch.tensor(9)}
    mixed = blend_states(start, tuned, 0.25)
    assert torch.allclose(mixed["w"], torch.full((3,), 0.25))
    assert mixed["b"].dtype == torch.float16 and torch.allclose(mixed["b"].float(), torch.full((2,), 3.0))
    assert int(mixed["n"]) == 9


def test_the_retain_set_is_the_trainers_held_out_part_of_the_mix(tmp_path):
    from scenetext.train.common import split_holdout
    from scenetext.train.recognizer import RecTrainConfig

    charset = Charset.default()
    mix = [RecSample(tmp_path / f"m{i:04d}.png", WORDS[i % len(WORDS)]) for i in range(4000)]
    never_trained = {str(s.image) for s in split_holdout(mix, RecTrainConfig().holdout)[1]}
    for sample in mix:
        if str(sample.image) in never_trained:
            cv2.imwrite(str(sample.image), _crop(sample.text))
    train, retain = retain_set(mix, ["mine"], charset, seed=0)
    assert retain.name == "held-out crops of mine" and len(retain.texts) == len(never_trained) >= 100
    assert {str(s.image) for s in train}.isdisjoint(never_trained) and len(train) + len(never_trained) == 4000
    few, _ = retain_set(mix[:500], ["mine"], charset, seed=0, renderer_factory=_Words)
    assert len(few) == 500  # too few held out: all trained on, synthetic words checked instead


class _Words:  # a stand-in renderer: a word per draw from the generator it is given
    def render(self, rng):
        text = WORDS[rng.randrange(len(WORDS))]
        return _crop(text), text


def test_the_retain_set_is_seeded_synthetic_words_apart_from_training():
    charset = Charset.default()

    Words = _Words
    train, a = retain_set([], [], charset, seed=3, renderer_factory=Words)
    _, b = retain_set([], [], charset, seed=3, renderer_factory=Words)
    assert train == [] and a.name == "synthetic words" and len(a.texts) == RETAIN_CROPS
    assert a.texts == b.texts  # the same seed gives the same check
    source = WordSampleSource(charset, real_ratio=0.0, seed=3, renderer_factory=Words, augment=False)
    trained = [source.raw(i)[1] for i in range(RETAIN_CROPS)]
    assert trained != a.texts  # drawn from generators of their own


# ----------------------------------------------------------------------------- a real run

@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    data = _crop_set(tmp / "crops", 40)
    cfg = FinetuneConfig(data=[str(data)], out=str(tmp / "out"), minutes=10, max_steps=4, batch_size=8, workers=0,
                         threads=1)
    return finetune(cfg, Quiet()), tmp


def test_finetune_writes_a_model_folder_with_a_report(finetuned):
    report, tmp = finetuned
    out = tmp / "out"
    assert {"crnn.pt", "manifest.json", "report.md", "curve.png"} <= {p.name for p in out.iterdir()}
    assert [e["name"] for e in json.loads((out / "manifest.json").read_text())["models"]] == ["crnn"]
    text = (out / "report.md").read_text()
    assert "| word accuracy | " in text and "case-sensitive" in text
    assert "little data: 40 labelled crops" in text
    assert "| original domain: word accuracy | " in text and "synthetic words, never trained on" in text
    assert report.counts["crops_train"] + report.counts["crops_held_out"] == 40
    assert report.counts["crops_held_out"] >= 1
    run = report.runs[0]
    assert run.steps_done >= 4 and run.schedule.steps == 4
    assert cv2.imread(str(out / "curve.png")) is not None
    assert 0.0 <= report.after["accuracy"] <= 1.0


def test_reader_and_run_use_the_folder(finetuned):
    from scenetext.reader import Reader

    _, tmp = finetuned
    out = tmp / "out"
    reader = Reader(models=str(out), bound_memory=False)
    assert Path(reader._recognizer_weights) == out / "crnn.pt"
    assert reader._detector_weights is None  # the folder has no detector: the shipped one
    assert len(reader.recognizer.recognize([_crop("OPEN")])) == 1

    photo = tmp / "photo.png"
    cv2.imwrite(str(photo), np.full((120, 200, 3), 255, np.uint8))
    result = CliRunner().invoke(main, ["run", str(photo), "--models", str(out), "-o", str(tmp / "read"), "-q"])
    assert result.exit_code == 0, result.output
    page = json.loads((tmp / "read" / "photo.png.json").read_text())
    assert "crnn.pt" in json.dumps(page)


def test_finetune_never_writes_into_a_used_folder(finetuned, tmp_path):
    _, tmp = finetuned
    with pytest.raises(DataError, match="not an empty folder"):
        finetune(FinetuneConfig(data=[str(tmp / "crops")], out=str(tmp / "out")), Quiet())


def test_tuning_mode_trains_the_weights_but_keeps_the_batchnorm_statistics():
    import torch

    from scenetext.recognition.model import CRNN
    from scenetext.train.finetune import tuning_mode

    torch.manual_seed(0)
    model = CRNN(CRNNConfig())
    tuning_mode(model)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and model.training and not any(m.training for m in norms)
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    weights = [m.weight.detach().clone() for m in norms]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(4, 1, 32, 96) * 3 + 1  # far from the statistics the BatchNorms start with
    model(x, torch.full((4,), 96))[..., 1].mean().backward()  # any loss of the log-probabilities
    opt.step()
    for m, (mean, var) in zip(norms, stats):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert any(not torch.equal(m.weight, w) for m, w in zip(norms, weights))  # scales still learn


def test_distillation_anchors_only_the_original_samples_of_a_batch():
    """With ``distill_original_only`` the teacher sees (and the KL term covers) only the batch's
    mix/synthetic samples: a batch of the user's crops alone trains on CTC as without a teacher,
    and a batch with original samples adds a loss that pulls them towards the teacher."""
    import copy

    import torch

    from scenetext.recognition.model import CRNN
    from scenetext.train.finetune import Schedule
    from scenetext.train.rec_data import WordBatch
    from scenetext.train.recognizer import _train_step

    torch.manual_seed(0)
    start = CRNN(CRNNConfig())
    teacher = copy.deepcopy(start).eval()
    seen = []
    teacher.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    targets = torch.tensor([3, 4, 5, 6, 7, 8])
    batch = WordBatch(torch.rand(3, 1, 32, 96) * 2 - 1, torch.full((3,), 96), targets, torch.tensor([2, 2, 2]),
                      torch.tensor([False, False, False]))
    schedule = Schedule(lr=1e-3, steps=10, warmup=0, batch_size=3, val_every=5)

    def one_step(with_teacher, batch, weight=1.0):
        model = copy.deepcopy(start)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        losses = []
        _train_step(model, opt, batch, 5, schedule, {}, losses, teacher if with_teacher else None, weight,
                    distill_original_only=True)
        return model, losses[0]

    plain, plain_loss = one_step(False, batch)
    anchored, anchored_loss = one_step(True, batch)
    assert seen == [] and anchored_loss == pytest.approx(plain_loss)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), anchored.state_dict().values()))

    # The same model but different from the teacher: the original samples add a positive KL.
    teacher.load_state_dict({k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                             for k, v in start.state_dict().items()})
    mixed = batch._replace(original=torch.tensor([True, False, True]))
    _, mixed_loss = one_step(True, mixed)
    assert seen == [2] and mixed_loss > plain_loss
    _, heavier = one_step(True, mixed, weight=3.0)
    assert heavier - plain_loss == pytest.approx(3 * (mixed_loss - plain_loss), rel=1e-3)
