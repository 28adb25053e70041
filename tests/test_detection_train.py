"""Detector training: a few steps on tiny synthetic images; Ctrl-C checkpoints and the resumed run
continues exactly like an uninterrupted one."""

from __future__ import annotations

import json
import signal

import numpy as np
import torch

from scenetext import checkpoint
from scenetext.data.formats import Region
from scenetext.train.det_data import AugmentConfig, DetSampleSource
from scenetext.train.detector import DetTrainConfig, train


class BarRenderer:
    """A dark bar (one text line) on gray; raises SIGINT on its ``interrupt_at``-th call."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls = 0
        self.interrupt_at = interrupt_at

    def render(self, rng):
        self.calls += 1
        if self.calls == self.interrupt_at:
            signal.raise_signal(signal.SIGINT)
        img = np.full((120, 160, 3), 128, np.uint8)
        x, y = rng.randint(5, 60), rng.randint(5, 80)
        img[y : y + 20, x : x + 80] = 20
        line = Region(np.array([[x, y], [x + 80, y], [x + 80, y + 20], [x, y + 20]], np.float32), "bar")
        return img, [line], [line]


def tiny_config(out) -> DetTrainConfig:
    return DetTrainConfig(out=str(out), steps=4, batch_size=1, warmup=1, crop=(64, 96), short_side=(100, 140),
                          workers=0, threads=1, log_every=1)


def test_sample_moves_regions_with_the_image():
    source = DetSampleSource(seed=1, augment=AugmentConfig(crop=(96, 128), short_side=(120, 120)),
                             renderer_factory=BarRenderer)
    rgb, targets = source(0)
    assert rgb.shape == (96, 128, 3)
    rows, cols, _ = np.nonzero(targets.labels == 1)
    assert len(rows)
    # Positive anchors are centred on the dark bar.
    assert rgb[rows * 16 + 8, cols * 16 + 8].mean() < rgb.mean() - 40


def test_interrupted_run_resumes_exactly(tmp_path):
    straight = train(tiny_config(tmp_path / "a"), renderer_factory=BarRenderer)
    stopped = train(tiny_config(tmp_path / "b"), renderer_factory=lambda: BarRenderer(interrupt_at=2))
    assert checkpoint.load(stopped)["train"]["step"] == 2
    resumed = train(tiny_config(tmp_path / "b"), renderer_factory=BarRenderer)
    a, b = checkpoint.load(straight), checkpoint.load(resumed)
    assert a["train"]["step"] == b["train"]["step"] == 4
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    assert all(np.isfinite(entry["loss"]) for entry in log)


def test_pasted_crop_scenes_feed_training_and_a_fixed_holdout(tmp_path):
    import cv2

    from scenetext.data.formats import RecSample
    from scenetext.train.detector import paste_holdout_set

    crops = []
    for i in range(4):
        img = np.full((20, 70, 3), 255, np.uint8)
        img[4:16, 5:65:6] = 0
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        crops.append(RecSample(tmp_path / f"{i}.png", f"word{i}"))
    source = DetSampleSource(seed=2, augment=AugmentConfig(crop=(96, 128), short_side=(120, 120)),
                             renderer_factory=BarRenderer, paste_crops=crops, paste_ratio=1.0)
    rgb, targets = source(0)
    assert (targets.labels == 1).any(), "pasted words give positive anchors"
    assert not any(source(i)[0][..., 0].std() == 0 for i in range(3))
    held = paste_holdout_set(tmp_path / "held", crops, 3)
    again = paste_holdout_set(tmp_path / "held", crops, 3)
    assert len(held) == 3 and all(s.regions for s in held)
    assert [[r.text for r in s.regions] for s in held] == [[r.text for r in s.regions] for s in again]


def test_a_lite_student_starts_from_a_small_detector_and_learns_its_outputs(tmp_path):
    from scenetext.detection.model import CTPN, CTPNConfig

    teacher_path = train(tiny_config(tmp_path / "teacher"), renderer_factory=BarRenderer)
    cfg = tiny_config(tmp_path / "student")
    cfg.variant, cfg.init, cfg.teacher, cfg.distill = "lite", str(teacher_path), str(teacher_path), 1.0
    student = checkpoint.load(train(cfg, renderer_factory=BarRenderer))
    assert CTPNConfig.from_dict(student["config"]).variant == "lite"
    log = [json.loads(line) for line in (tmp_path / "student" / "log.jsonl").read_text().splitlines()]
    assert all("distill" in entry and np.isfinite(entry["distill"]) and entry["distill"] > 0 for entry in log)
    model = CTPN(CTPNConfig(variant="lite"))
    model.load_state_dict(student["state_dict"])  # a lite model file loads as one
