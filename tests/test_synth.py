"""Synthetic generator: text kinds, font caveats, word crops, scenes and their boxes, CLI."""

import random
from dataclasses import replace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from scenetext.cli import main
from scenetext.synth.backgrounds import BackgroundPool
from scenetext.synth.datasets import SynthSceneDataset, SynthWordDataset
from scenetext.synth.fonts import FEW_FONTS, FontPool, default_font, describe_fonts, discover_fonts, read_caveats
from scenetext.data.formats import read_det_set, read_rec_set
from scenetext.synth.render_scenes import SceneRenderer, SceneStyle
from scenetext.synth.render_text import degrade, draw_layout, draw_text, layout_text, word_ink_boxes
from scenetext.synth.render_words import WordRenderer
from scenetext.synth.text_sampler import DEFAULT_WEIGHTS, TextSampler
from scenetext.recognition.charset import Charset


class FlatBackgrounds(BackgroundPool):
    """A constant grey background, so every changed pixel is text."""

    def __init__(self):
        super().__init__([])

    def crop(self, rng, w, h, photo_prob=0.0):
        return np.full((h, w, 3), 128, np.uint8)


def test_text_sampler_kinds_and_mix():
    rng = random.Random(0)
    only_phones = TextSampler(lexicon=["alpha"], weights={"phone": 1.0})
    assert all(any(c.isdigit() for c in only_phones.sample(rng)) for _ in range(50))
    mixed = TextSampler(lexicon=["alpha", "beta", "gamma"])
    texts = [mixed.sample(rng) for _ in range(400)]
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(" " in t for t in texts), "phrases with spaces"
    assert any(any(c.isdigit() for c in t) for t in texts)
    assert all(0 < len(t) <= mixed.max_chars for t in texts)
    assert set(DEFAULT_WEIGHTS) >= {"word", "price", "time", "date", "phone", "code", "url", "email", "phrase"}
    with pytest.raises(ValueError):
        TextSampler(lexicon=["a"], weights={"poetry": 1.0})


def test_caveats_parsing_and_discovery(tmp_path):
    caveats = read_caveats("Caps.ttf\tcapsonly\nDull.ttf\tlowdiversity\nHoles.otf\tmissing:xyz\n")
    assert caveats["Caps.ttf"] == {"capsonly"}
    for name in ("Caps.ttf", "Dull.ttf", "Holes.otf", "Plain.ttf", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    faces = {f.path.name: f for f in discover_fonts([tmp_path], caveats)}
    assert set(faces) == {"Caps.ttf", "Holes.otf", "Plain.ttf"}, "low-diversity faces and non-fonts are dropped"
    assert faces["Caps.ttf"].caps_only and faces["Caps.ttf"].label_for("Exit") == "EXIT"
    assert not faces["Holes.otf"].supports("xylophone")


def test_training_log_warns_when_few_fonts_are_installed(tmp_path):
    few, many = tmp_path / "few", tmp_path / "many"
    for folder, n in ((few, 3), (many, FEW_FONTS)):
        folder.mkdir()
        for i in range(n):
            (folder / f"Face{i}.ttf").write_bytes(b"")
    line = describe_fonts([few])
    assert line.startswith(f"synthetic text: 3 font faces under {few}") and "warning" in line and "make fonts" in line
    assert describe_fonts([many]) == f"synthetic text: {FEW_FONTS} font faces under {many}"


def test_font_pool_falls_back_to_default_font():
    face, label = FontPool([]).pick(random.Random(0), "Hello")
    assert face is None and label == "Hello"


def test_caps_only_face_gets_upper_case_label():
    pool = FontPool.from_dirs()
    caps = [f for f in pool.faces if f.caps_only]
    if not caps:
        pytest.skip("no system fonts installed (make fonts)")
    only_caps = FontPool(caps[:3])
    _, label = only_caps.pick(random.Random(1), "Parking 24/7")
    assert label == "PARKING 24/7"


def test_word_crops_height_label_and_seed():
    renderer = WordRenderer()
    charset = Charset.default()
    a = [renderer.render(random.Random(i)) for i in range(30)]
    b = [renderer.render(random.Random(i)) for i in range(30)]
    for (img, label), (img2, label2) in zip(a, b):
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[0] == 32 and img.shape[1] >= 4
        assert label and charset.covers(label)
        assert label == label2 and np.array_equal(img, img2), "same seed, same sample"
    assert len({label for _, label in a}) > 20


def test_word_boxes_contain_their_ink():
    layer = draw_text("Gate 24B exit", default_font(40), stroke=2, per_word=True)
    assert layer.words == ["Gate", "24B", "exit"]
    covered = np.zeros_like(layer.outline, bool)
    for x0, y0, x1, y1 in layer.word_boxes:
        covered[y0:y1, x0:x1] = True
    assert (layer.outline[~covered] < 0.05).all(), "no ink outside the word boxes"
    xs = [b[0] for b in layer.word_boxes]
    assert xs == sorted(xs) and all(b[2] <= nb[0] for b, nb in zip(layer.word_boxes, layer.word_boxes[1:]))


def test_a_text_is_measured_as_it_is_drawn():
    # Scenes place a line from its measured layout and draw it only once it has room.
    font = default_font(36)
    layout = layout_text("Open 7 days", font, stroke=1)
    layer = draw_layout(layout)
    assert layer.fill.shape == layer.outline.shape == (layout.size[1], layout.size[0])
    assert word_ink_boxes(layout)[0] == ["Open", "7", "days"]
    whole = draw_text("Open 7 days", font, stroke=1, per_word=True)
    assert np.array_equal(whole.fill, layer.fill) and whole.word_boxes == word_ink_boxes(layout)[1]


@pytest.mark.parametrize("seed", range(20))
def test_degrade_returns_a_new_image_and_leaves_its_input(seed):
    img = np.random.default_rng(seed).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    before = img.copy()
    out = degrade(random.Random(seed), img, strength=1.0 if seed else 0.0)
    assert out is not img and out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(img, before)
    if seed == 0:  # nothing to do: the same pixels
        assert np.array_equal(out, img)
    out[:] = 0
    assert np.array_equal(img, before)


@pytest.mark.parametrize("seed", range(6))
def test_scene_text_lies_inside_its_boxes(seed):
    style = SceneStyle(degrade=0.0, shadow_prob=0.0, border_prob=0.5)
    renderer = SceneRenderer(backgrounds=FlatBackgrounds(), style=style)
    img, words, lines = renderer.render(random.Random(seed))
    assert img.shape == (480, 640, 3) and lines
    changed = np.abs(img.astype(int) - 128).max(axis=2) > 12
    inside = np.zeros(changed.shape, np.uint8)
    for w in words:
        cv2.fillPoly(inside, [np.round(w.points).astype(np.int32)], 1)
    inside = cv2.dilate(inside, np.ones((5, 5), np.uint8)).astype(bool)
    assert changed.sum() > 0
    assert (changed & ~inside).sum() <= 0.002 * changed.sum(), "drawn text outside its word boxes"
    # Each line's words are on it: the line quad covers its words' centres; texts agree.
    assert sum(len(ln.text.split()) for ln in lines) == len(words)
    for w in words:
        c = w.points.mean(0)
        assert 0 <= c[0] < 640 and 0 <= c[1] < 480


def test_scene_seed_reproduces_and_datasets_index():
    ds = SynthSceneDataset(3, seed=5)
    img, words, lines = ds[1]
    img2, words2, _ = SynthSceneDataset(3, seed=5)[1]
    assert np.array_equal(img, img2) and [w.text for w in words] == [w.text for w in words2]
    with pytest.raises(IndexError):
        ds[3]
    wds = SynthWordDataset(4, seed=1)
    assert len(wds) == 4 and wds[2][1] == SynthWordDataset(4, seed=1)[2][1]


def test_synth_cli_writes_readable_sets(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["synth", "words", "-n", "12", "-o", str(tmp_path / "w"), "--workers", "0",
                               "--format", "folder"])
    assert res.exit_code == 0, res.output
    samples = read_rec_set(tmp_path / "w")
    assert len(samples) == 12 and all(cv2.imread(str(s.image)).shape[0] == 32 for s in samples)
    res = runner.invoke(main, ["synth", "scenes", "-n", "3", "-o", str(tmp_path / "s"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    det = read_det_set(tmp_path / "s")
    assert len(det) == 3 and all(d.lines is not None for d in det)
    assert sum(len(d.regions) for d in det) >= sum(len(d.lines) for d in det) > 0


def test_synth_cli_rejects_bad_arguments(tmp_path):
    res = CliRunner().invoke(main, ["synth", "words", "-n", "0", "-o", str(tmp_path)])
    assert res.exit_code == 2 and "0" in res.output


def _word_crops(folder, n=6):
    """Tight 'word crops': dark strokes on white, each of its own size; one tall (vertical) crop."""
    from scenetext.data.formats import RecSample

    folder.mkdir(parents=True, exist_ok=True)
    crops = []
    for i in range(n):
        h, w = 24 + 4 * i, 60 + 15 * i
        img = np.full((h, w, 3), 255, np.uint8)
        for x in range(3, w - 6, 9):
            img[3 : h - 3, x : x + 4] = 0
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), img)
        crops.append(RecSample(path, f"w{i}"))
    tall = folder / "tall.png"
    cv2.imwrite(str(tall), np.zeros((90, 20, 3), np.uint8))
    crops.append(RecSample(tall, "vertical"))
    return crops


@pytest.mark.parametrize("seed", range(4))
def test_pasted_crops_lie_inside_their_regions(tmp_path, seed):
    from scenetext.synth.render_pasted import PasteSceneRenderer, PasteStyle

    style = PasteStyle(size=(320, 240), words=(3, 6), text_height=(16, 32), distractors=0.0, row_prob=0.5)
    renderer = PasteSceneRenderer(_word_crops(tmp_path), backgrounds=FlatBackgrounds(), style=style)
    img, words, lines = renderer.render(random.Random(seed))
    assert img.shape == (240, 320, 3) and words
    assert "vertical" not in {w.text for w in words}, "vertical crops are left out"
    assert sum(len(line.text.split()) for line in lines) == len(words)
    changed = np.abs(img.astype(int) - 128).max(axis=2) > 20
    inside = np.zeros(changed.shape, np.uint8)  # a row's lines also cover the gaps between its words
    for region in words + lines:
        points = region.points
        assert (points >= -0.5).all() and (points[:, 0] <= 320).all() and (points[:, 1] <= 240).all()
        cv2.fillPoly(inside, [np.round(points).astype(np.int32)], 1)
    grown = cv2.dilate(inside, np.ones((3, 3), np.uint8)).astype(bool)
    assert (changed & ~grown).sum() <= 0.01 * changed.sum(), "pasted pixels outside the regions"
    for w in words:  # every region holds pasted content (the crops are black and white, far from grey)
        mask = np.zeros(changed.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(w.points).astype(np.int32)], 1)
        assert changed[mask.astype(bool)].mean() > 0.5, w.text
    again, words2, _ = renderer.render(random.Random(seed))
    assert np.array_equal(img, again) and [w.text for w in words2] == [w.text for w in words]


class ColourPatches(BackgroundPool):
    """Grey scenes; every other crop request (the plain distractor patches) is a saturated red."""

    def __init__(self):
        super().__init__([])

    def crop(self, rng, w, h, photo_prob=0.0):
        colour = (128, 128, 128) if (w, h) == (320, 240) else (220, 30, 30)
        return np.full((h, w, 3), colour, np.uint8)


def test_pasted_scenes_add_unlabelled_plain_patches(tmp_path):
    from scenetext.synth.render_pasted import PasteSceneRenderer, PasteStyle

    style = PasteStyle(size=(320, 240), words=(2, 3), text_height=(12, 20), distractors=2.0)
    renderer = PasteSceneRenderer(_word_crops(tmp_path), backgrounds=ColourPatches(), style=style)
    img, words, _ = renderer.render(random.Random(3))
    red = (img[..., 0] > 180) & (img[..., 1] < 80)
    labelled = np.zeros(red.shape, np.uint8)
    for w in words:
        cv2.fillPoly(labelled, [np.round(w.points).astype(np.int32)], 1)
    assert red.sum() > 50 and not (red & labelled.astype(bool)).any(), "distractors are pasted, never labelled"
    with pytest.raises(ValueError):
        PasteSceneRenderer([])


def test_seamless_pasting_fades_a_margin_of_edge_pixels_round_the_labelled_crop(tmp_path):
    from scenetext.synth.render_pasted import PasteSceneRenderer, PasteStyle

    crops = _word_crops(tmp_path)
    style = PasteStyle(size=(320, 240), words=(2, 3), text_height=(20, 24), distractors=0.0, row_prob=0.0,
                       max_rotation=0.0, feather=0.0, margin=(0.5, 0.5))
    renderer = PasteSceneRenderer(crops, backgrounds=FlatBackgrounds(), style=style)
    img, words, lines = renderer.render(random.Random(1))
    assert words and len(words) == len(lines)
    labelled = np.zeros(img.shape[:2], np.uint8)
    for w in words:
        cv2.fillPoly(labelled, [np.round(w.points).astype(np.int32)], 1)
        (x0, y0), (x1, y1) = w.points.min(axis=0), w.points.max(axis=0)
        assert 19 <= y1 - y0 <= 27  # the crop's own height, not the margin's
    labelled = labelled.astype(bool)
    grey = img.astype(int)
    ink = grey.max(axis=2) < 60  # the crops' black bars
    white = grey.min(axis=2) > 150  # the crops' white paper, and its faded copy round them
    assert ink.any() and (ink & ~cv2.dilate(labelled.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).sum() == 0
    halo = white & ~labelled
    assert halo.sum() > 0.2 * (white & labelled).sum(), "the margin extends the crop past its region"
    again, *_ = renderer.render(random.Random(1))
    assert np.array_equal(img, again)
    plain = PasteSceneRenderer(crops, backgrounds=FlatBackgrounds(), style=replace(style, margin=(0.0, 0.0)))
    img0, words0, _ = plain.render(random.Random(1))
    labelled0 = np.zeros(img0.shape[:2], np.uint8)
    for w in words0:
        cv2.fillPoly(labelled0, [np.round(w.points).astype(np.int32)], 1)
    white0 = img0.astype(int).min(axis=2) > 150
    assert (white0 & ~labelled0.astype(bool)).sum() <= 0.05 * white0.sum(), "no margin: the crop is its region"


def test_synthetic_sources_are_explicit_options_with_a_clear_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from scenetext.cli import main
    from scenetext.synth import sources
    from scenetext.synth.backgrounds import BackgroundPool
    from scenetext.synth.text_sampler import load_lexicon

    # the options set these for the run; monkeypatch puts them back afterwards
    monkeypatch.setenv(sources.BACKGROUNDS_ENV, "unset")
    monkeypatch.setenv(sources.WORDS_ENV, "unset")
    runner = CliRunner()
    missing = runner.invoke(main, ["synth", "words", "-n", "2", "-o", str(tmp_path / "a"),
                                   "--backgrounds", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "--backgrounds none" in missing.output and "nowhere" in missing.output
    no_words = runner.invoke(main, ["synth", "words", "-n", "2", "-o", str(tmp_path / "b"),
                                    "--words", str(tmp_path / "none.txt")])
    assert no_words.exit_code == 2 and "--words none" in no_words.output
    words = tmp_path / "words.txt"
    words.write_text("Zebulon\nQuixotic\n")
    ok = runner.invoke(main, ["synth", "words", "-n", "2", "-o", str(tmp_path / "c"), "--workers", "0",
                              "--backgrounds", "none", "--words", str(words)])
    assert ok.exit_code == 0, ok.output
    assert len(BackgroundPool.from_dir()) == 0 and load_lexicon() == ["Quixotic", "Zebulon"]


def test_preview_puts_synthetic_crops_beside_real_ones(tmp_path):
    from scenetext.data.formats import write_rec_set

    real = tmp_path / "real_train"
    crops = _word_crops(real / "images", n=3)
    write_rec_set(real, crops)
    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(main, ["synth", "preview", "words", "-n", "4", "--real", str(real), "-o", str(out),
                                    "--backgrounds", "none", "--words", "none"])
    assert res.exit_code == 0, res.output
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 2 * 2 * 200 + 12  # a synthetic block and a real block, two columns each
    real_block = sheet[26:, 412:]
    assert (real_block < 60).any(), "the real crops' dark strokes are on the sheet"
    bad = CliRunner().invoke(main, ["synth", "preview", "scenes", "--real", str(real), "-o", str(out)])
    assert bad.exit_code == 2 and "--real goes with 'words'" in bad.output
