"""CRNN recogniser: charset, CTC decoding, padding invariance, checkpoints, training, eval CLI."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scenetext import checkpoint
from scenetext.cli import main
from scenetext.nn import fold_batchnorm
from scenetext.recognition.charset import Charset
from scenetext.recognition.decode import (
    Lexicon,
    beam_decode,
    greedy_decode,
    lexicon_decode,
)
from scenetext.recognition.model import CRNN, CRNNConfig
from scenetext.recognition.predictor import Recognizer
from scenetext.recognition.preprocess import (
    min_frames,
    pad_batch,
    prepare_crop,
    target_width,
    width_batches,
)


def frames_for(charset, path, T=None):
    """Log-probs that spell `path` (a list of chars, '-' for blank), one frame per entry."""
    C = charset.num_classes
    lp = np.full((len(path), C), math.log(0.01 / (C - 1)), np.float32)
    for t, ch in enumerate(path):
        k = 0 if ch == "-" else charset.encode(ch)[0]
        lp[t, k] = math.log(0.99)
    return lp


def test_charset_roundtrip_and_file(tmp_path):
    cs = Charset.default()
    text = "Parking 24/7: $5.99!"
    assert cs.covers(text) and cs.decode(cs.encode(text)) == text
    assert cs.num_classes == len(cs.chars) + 1 and cs.encode("0") == [1]
    assert not cs.covers("naïve") and cs.filter("naïve") == "nave"
    with pytest.raises(KeyError):
        cs.encode("é")
    f = tmp_path / "cn.txt"
    f.write_text("中\n文\n<space>\n字\n", encoding="utf-8")
    cn = Charset.from_file(f)
    assert cn.chars == "中文 字" and cn.decode(cn.encode("中 文")) == "中 文"
    with pytest.raises(ValueError):
        Charset("aa")


def test_greedy_decode_merges_repeats_and_keeps_positions():
    cs = Charset.default()
    d = greedy_decode(frames_for(cs, list("--hh-e-ll-l-oo-")), cs)
    assert d.text == "hello"
    assert d.char_frames == [(2, 4), (5, 6), (7, 9), (10, 11), (12, 14)]
    assert len(d.char_confidences) == 5 and 0.98 < d.confidence <= 1.0
    empty = greedy_decode(frames_for(cs, list("----")), cs)
    assert empty.text == "" and empty.char_frames == []


def test_beam_decode_agrees_with_greedy_on_confident_frames():
    cs = Charset.default()
    lp = frames_for(cs, list("-a-bb--a-"))
    assert beam_decode(lp, cs).text == greedy_decode(lp, cs).text == "aba"


def test_beam_decode_beats_greedy_when_paths_add_up():
    # Two frames over {blank, a}: best single path is blank-blank (0.36), but "a" collects
    # a-blank + blank-a + a-a = 0.24 + 0.24 + 0.16 = 0.64.
    cs = Charset("a")
    p = np.log(np.array([[0.6, 0.4], [0.6, 0.4]], np.float32))
    assert greedy_decode(p, cs).text == ""
    assert beam_decode(p, cs).text == "a"


def test_lexicon_decode_picks_the_ctc_best_word(tmp_path):
    cs = Charset.default()
    lp = frames_for(cs, list("-c-a-f-e-"))  # reads "cafe"
    lex_file = tmp_path / "words.txt"
    lex_file.write_text("cafe\ncake\nface\n")
    assert lexicon_decode(lp, cs, Lexicon.from_file(lex_file)).text == "cafe"
    lp2 = frames_for(cs, list("-c-a-x-e-"))
    assert lexicon_decode(lp2, cs, Lexicon(["cake", "cafe", "zebra"])).text in {"cake", "cafe"}
    big = Lexicon(["cave", "zzzzzzzz"] + [f"w{i}" for i in range(3000)], full_search_limit=10)
    assert "zzzzzzzz" not in big.candidates("cafe") and "cave" in big.candidates("cafe")


def test_preprocess_keeps_aspect_and_pads():
    crop = np.zeros((64, 200, 3), np.uint8)
    arr = prepare_crop(crop)
    assert arr.shape == (32, 100) and arr.dtype == np.float32
    assert target_width(10, 64) == 8 and target_width(1000, 10, max_width=400) == 400
    x, w = pad_batch([np.ones((32, 8), np.float32), np.ones((32, 16), np.float32)])
    assert x.shape == (2, 1, 32, 16) and w.tolist() == [8, 16] and x[0, 0, :, 8:].abs().sum() == 0
    assert min_frames([1, 2, 2, 3]) == 5


def test_width_batches_sort_by_width_and_bound_the_padded_size():
    widths = [300, 40, 1000, 96, 40, 164, 2000]
    batches = width_batches(widths, batch_size=3, max_columns=1000)
    assert sorted(i for b in batches for i in b) == list(range(len(widths)))
    flat = [i for b in batches for i in b]
    assert [widths[i] for i in flat] == sorted(widths)  # narrowest first
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(widths[i] for i in b) <= 1000
    assert [len(b) for b in batches] == [3, 2, 1, 1]  # 40 40 96 | 164 300 | 1000 | 2000 alone
    assert width_batches([], 64, 100) == []


@pytest.mark.parametrize("variant", ["small", "medium", "fast"])
def test_padded_batch_gives_the_same_result_as_alone(variant):
    torch.manual_seed(0)
    model = CRNN(CRNNConfig(variant=variant))
    # Non-trivial BN statistics, then eval mode.
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 1, 32, 96))
    model.eval()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (32, w, 3), dtype=np.uint8) for w in (40, 96, 164, 300)]
    rec = Recognizer(model, max_batch_columns=600)  # 40, 96, 164 together; 300 alone
    batched = rec.log_probs(crops)
    assert all(lp.base is None for lp in batched)  # copies: each batch's whole output is freed at once
    for crop, lp in zip(crops, batched):
        alone = rec.log_probs([crop])[0]
        assert lp.shape == alone.shape
        np.testing.assert_allclose(lp, alone, atol=2e-4)
    fused = Recognizer(fold_batchnorm(model)).log_probs(crops)
    for a, b in zip(fused, batched):
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_the_padding_mask_is_applied_in_place_only_without_autograd():
    torch.manual_seed(0)
    model = CRNN(CRNNConfig(variant="fast")).eval()
    x, widths = torch.randn(3, 1, 32, 96), torch.tensor([40, 96, 64])
    with torch.inference_mode():
        inferred = model(x, widths)
    trained = model(x, widths)  # autograd on: the mask must not overwrite what backward needs
    trained.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    for j, frames in enumerate(model.frames(widths).tolist()):  # the frames each crop has
        torch.testing.assert_close(inferred[:frames, j], trained.detach()[:frames, j], atol=1e-5, rtol=1e-4)


def test_checkpoint_roundtrip_fp16(tmp_path):
    cfg = CRNNConfig(chars="abc")
    model = CRNN(cfg)
    checkpoint.save(tmp_path / "ck.pt", {"kind": "crnn", "config": cfg.to_dict(), "state_dict": model.state_dict()})
    out = checkpoint.export_weights(tmp_path / "ck.pt", tmp_path / "w.pt")
    rec = Recognizer.load(out)
    assert rec.charset.chars == "abc" and rec.model.fc.out_features == 4
    with pytest.raises(ValueError):
        checkpoint.load(out, kind="ctpn")
    with pytest.raises(checkpoint.ModelFileError, match="model file not found"):
        checkpoint.load(tmp_path / "missing.pt")


def test_export_average_writes_the_mean_of_the_weights_and_refuses_other_models(tmp_path):
    cfg = CRNNConfig(chars="abc")
    paths, states = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        state = CRNN(cfg).state_dict()
        states.append(state)
        paths.append(tmp_path / f"ck{seed}.pt")
        checkpoint.save(paths[-1], {"kind": "crnn", "config": cfg.to_dict(), "state_dict": state})
    result = CliRunner().invoke(main, ["export", str(paths[0]), str(tmp_path / "mean.pt"), "--fp32",
                                       "--average", str(paths[1]), "--average", str(paths[2])])
    assert result.exit_code == 0, result.output
    mean = checkpoint.load(tmp_path / "mean.pt")
    weight = "fc.weight"
    torch.testing.assert_close(mean["state_dict"][weight], sum(s[weight] for s in states) / 3)
    assert mean["meta"]["averaged"] == ["ck0.pt", "ck1.pt", "ck2.pt"]
    assert Recognizer.load(tmp_path / "mean.pt").charset.chars == "abc"

    other = CRNNConfig(chars="abcd")
    checkpoint.save(tmp_path / "other.pt", {"kind": "crnn", "config": other.to_dict(),
                                            "state_dict": CRNN(other).state_dict()})
    result = CliRunner().invoke(main, ["export", str(paths[0]), str(tmp_path / "bad.pt"),
                                       "--average", str(tmp_path / "other.pt")])
    assert result.exit_code != 0 and "cannot be averaged" in result.output and "other.pt" in result.output
    assert not (tmp_path / "bad.pt").exists()


def _tiny_real_set(tmp_path):
    import random

    import cv2

    from scenetext.data.formats import write_rec_set
    from scenetext.synth.render_words import WordRenderer

    folder = tmp_path / "real"
    (folder / "images").mkdir(parents=True)
    r = WordRenderer()
    pairs = []
    for i in range(12):
        img, text = r.render(random.Random(i))
        p = folder / "images" / f"{i}.jpg"
        cv2.imwrite(str(p), img[:, :, ::-1])
        pairs.append((p, text))
    pairs.append((folder / "images" / "bad.jpg", "unreadable"))
    (folder / "images" / "bad.jpg").write_bytes(b"not an image")
    pairs.append((folder / "images" / "0.jpg", "ünïcödé"))  # outside the charset
    pairs.append((folder / "images" / "1.jpg", "x" * 200))  # too long for the crop
    write_rec_set(folder, pairs)
    return folder


def test_training_skips_bad_samples_and_resumes_exactly(tmp_path):
    from scenetext.train.recognizer import RecTrainConfig, train

    real = _tiny_real_set(tmp_path)
    common = dict(batch_size=8, bucket=2, real=[str(real)], real_ratio=0.7, holdout=0.0, val=[str(real)],
                  val_every=4, workers=0, threads=1, lr=1e-3, warmup=2)
    full = RecTrainConfig(out=str(tmp_path / "a"), steps=8, **common)
    train(full)
    part = RecTrainConfig(out=str(tmp_path / "b"), steps=8, stop_at=4, **common)
    train(part)
    resumed = RecTrainConfig(out=str(tmp_path / "b"), steps=8, **common)
    train(resumed)
    a = checkpoint.load(tmp_path / "a" / "last.pt")
    b = checkpoint.load(tmp_path / "b" / "last.pt")
    assert a["train"]["step"] == b["train"]["step"] == 8
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=1e-4, atol=1e-5)
    skipped = a["train"]["skipped"]
    assert sum(skipped.values()) > 0 and "non-finite loss" not in skipped
    assert set(skipped) <= {"unreadable image", "characters outside the charset", "label too long for the crop"}
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    vals = [r for r in log if "val" in r]
    assert vals and {"n", "accuracy", "crops_per_second"} <= set(vals[-1]["val"]["real"])


def _eval_set(tmp_path, n: int):
    """A real set of its first ``n`` readable crops and an untrained recogniser file, ``w.pt``."""
    real = _tiny_real_set(tmp_path)
    # Drop the bad lines: eval needs readable crops.
    labels = real / "labels.tsv"
    labels.write_text("".join(l + "\n" for l in labels.read_text().splitlines()[:n]))
    cfg = CRNNConfig()
    checkpoint.save(tmp_path / "w.pt", {"kind": "crnn", "config": cfg.to_dict(), "state_dict": CRNN(cfg).state_dict()})
    return real


def test_eval_rec_cli_reports_protocol_figures(tmp_path):
    real = _eval_set(tmp_path, 12)
    out = tmp_path / "r.json"
    errs = tmp_path / "errors.tsv"
    res = CliRunner().invoke(main, ["eval", "rec", str(real), "--weights", str(tmp_path / "w.pt"),
                                    "--json", str(out), "--errors", str(errs)])
    assert res.exit_code == 0, res.output
    figures = json.loads(out.read_text())["real"]
    assert set(figures) == {"n", "accuracy", "accuracy_case_sensitive", "one_minus_ned", "crops_per_second"}
    assert figures["n"] == 12 and figures["accuracy"] == 0.0  # an untrained model reads nothing right
    assert len(errs.read_text().splitlines()) == 12


def test_eval_threads_option_sets_the_models_thread_count(tmp_path):
    import torch

    real = _eval_set(tmp_path, 4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        res = CliRunner().invoke(main, ["eval", "rec", str(real), "--weights", str(tmp_path / "w.pt"),
                                        "--no-lm", "--threads", "1"])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
        res = CliRunner().invoke(main, ["eval", "rec", str(real), "--weights", str(tmp_path / "w.pt"),
                                        "--threads", "0"])
        assert res.exit_code != 0 and "--threads" in res.output
    finally:
        torch.set_num_threads(before)


def _printed_word(text="RIVER"):
    """A clean dark word on white, 60 px tall, in Pillow's built-in font (its drawing does not
    change between OpenCV releases, whose putText strokes do)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("RGB", (right - left + 28, 60), (255, 255, 255))
    ImageDraw.Draw(canvas).text((14 - left, (60 - (bottom - top)) // 2 - top), text, font=font, fill=(20, 20, 20))
    return np.asarray(canvas).copy()


def test_tall_crops_are_read_in_the_orientation_that_reads_best():
    import cv2

    rec = Recognizer.load()  # the shipped weights read a clean printed word
    word = _printed_word()
    up = cv2.rotate(word, cv2.ROTATE_90_COUNTERCLOCKWISE)  # the word runs up: turn it clockwise
    down = cv2.rotate(word, cv2.ROTATE_90_CLOCKWISE)
    flat, upward, downward = rec.recognize([word, up, down])
    assert flat.text.upper() == "RIVER" and flat.rotation == 0
    assert upward.text.upper() == "RIVER" and upward.rotation == 90
    assert downward.text.upper() == "RIVER" and downward.rotation == 270
    as_is = rec.recognize([up], orient=False)[0]
    assert as_is.rotation == 0 and as_is.text.upper() != "RIVER"
    assert Recognizer(rec.model, rotate_tall=None).recognize([up])[0].rotation == 0


def test_training_turns_tall_real_crops_upright_by_label_likelihood(tmp_path):
    import cv2

    from scenetext.data.formats import read_rec_set, write_rec_set
    from scenetext.train.rec_data import WordSampleSource
    from scenetext.recognition.orientation import label_orientations

    folder = tmp_path / "real"
    (folder / "images").mkdir(parents=True)
    word = _printed_word()
    images = {"up.png": cv2.rotate(word, cv2.ROTATE_90_COUNTERCLOCKWISE),
              "down.png": cv2.rotate(word, cv2.ROTATE_90_CLOCKWISE), "flat.png": word}
    for name, img in images.items():
        cv2.imwrite(str(folder / "images" / name), img)
    write_rec_set(folder, [(folder / "images" / name, "RIVER") for name in images])
    samples = read_rec_set(folder)
    model = Recognizer.load().model
    chosen = label_orientations(model, model.config.charset, samples)
    names = {s.image.name: str(s.image) for s in samples}
    assert chosen == {names["up.png"]: 90, names["down.png"]: 270}  # the wide crop is not tall

    source = WordSampleSource(model.config.charset, samples, real_ratio=1.0, augment=False, orientations=chosen)
    for index in range(6):
        img, text, origin = source.raw(index)
        assert origin == "real" and text == "RIVER"
        assert img.shape[1] > img.shape[0]  # every crop comes out as a wide, upright word


def test_inference_bilstm_over_a_padded_batch_equals_the_packed_one():
    """Without gradients the CRNN runs its BiLSTMs on the padded batch (forward as is, backward
    reversed within each length) instead of packing: valid frames must be the packed result."""
    import torch
    from torch import nn

    from scenetext.recognition.model import CRNN

    torch.manual_seed(0)
    rnn = nn.LSTM(8, 6, bidirectional=True)
    seq = torch.randn(10, 3, 8)
    lengths = torch.tensor([10, 4, 7])
    with torch.enable_grad():
        packed = CRNN._rnn(rnn, seq, lengths)
    with torch.no_grad():
        padded = CRNN._rnn(rnn, seq, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(padded[:n, b], packed[:n, b], atol=1e-6, rtol=1e-5)
        # And each equals the sequence read alone.
        alone = rnn(seq[:n, b : b + 1])[0][:, 0]
        torch.testing.assert_close(padded[:n, b], alone.detach(), atol=1e-6, rtol=1e-5)
