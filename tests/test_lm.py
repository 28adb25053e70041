"""The language prior and the prefix beam search it re-ranks, on hand-made log-probabilities."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import BlobDetector, dark_boxes_image
from scenetext import cli
from scenetext.reader import Reader
from scenetext.recognition.beam import PriorDecoder, align, check_lm, lm_decoder, prefix_beam
from scenetext.recognition.charset import Charset
from scenetext.recognition.decode import greedy_decode
from scenetext.recognition.lm import NUM_SYMBOLS, CharNgram, WordPrior, tokens

CHARSET = Charset.default()


def frames(*spec) -> np.ndarray:
    """Log-probabilities (T, classes) of hand-made frames: each item is a character read surely
    (p 0.98) or a dict ``{character: p}`` (``""``: the blank); a sure blank follows each item. The
    mass left over is spread over every other class."""
    rows = []
    for item in spec:
        for probs in (item if isinstance(item, dict) else {item: 0.98}), {"": 0.99}:
            row = np.zeros(CHARSET.num_classes)
            for char, p in probs.items():
                row[CHARSET.encode(char)[0] if char else 0] = p
            rest = row == 0
            row[rest] = max(1.0 - row.sum(), 1e-6) / rest.sum()
            rows.append(row / row.sum())
    return np.log(np.array(rows))


@pytest.fixture(scope="module")
def tiny():
    """A prior of a few words: "house" ten times as frequent as "horse"."""
    return WordPrior.from_words({"house": 5e-3, "horse": 5e-4, "genesis": 1e-3, "the": 5e-2, "diamond": 1e-3,
                                 "cafe": 1e-3, "al": 1e-2, "s": 1e-3, "00": 1e-2, "000": 1e-2}, name="tiny")


@pytest.fixture(scope="module")
def english():
    pytest.importorskip("wordfreq")
    from scenetext.recognition.lm import english_prior

    return english_prior()


def read(log_probs, prior, **settings) -> str:
    return PriorDecoder(prior, **settings).decode(log_probs, CHARSET).text


# ------------------------------------------------------------------------- the prior's view


def test_the_word_table_is_the_mapping_it_was_built_from():
    from scenetext.recognition.lm import WordTable

    words = {"house": 5e-3, "horse": 5e-4, "caf\u00e9": 1e-3, "a": 2e-2, "zz": 1e-6}
    table = WordTable(words)
    assert len(table) == 5 and dict(table) == words and sorted(table) == sorted(words)
    assert table["horse"] == 5e-4 and table.get("caf\u00e9") == 1e-3
    for missing in ("hous", "houses", "", "h", "zzz", "house\0", 3, None):
        assert missing not in table and table.get(missing, -1.0) == -1.0
    with pytest.raises(KeyError):
        table["hors"]
    assert len(WordTable({})) == 0 and "a" not in WordTable({})


def test_a_saved_prior_loads_back_as_the_same_prior(tiny, tmp_path):
    path = tmp_path / "prior.npz"
    tiny.save(path, source="hand-made")
    loaded = WordPrior.load(path)
    assert loaded.name == "tiny" and loaded.word_share == tiny.word_share and dict(loaded.frequencies) == dict(tiny.frequencies)
    np.testing.assert_array_equal(loaded.ngram.table, tiny.ngram.table)
    for text in ("house", "horse", "Genaxis", "A12", "$2.50", "the house", "zq"):
        assert loaded.logp(text) == tiny.logp(text) and loaded.score(text).known == tiny.score(text).known
    with np.load(path, allow_pickle=False) as z:  # plain arrays only: readable without pickle
        assert str(z["source"]) == "hand-made" and z["keys"].dtype.kind == "S"


def test_a_file_that_is_not_a_prior_is_refused_in_one_line(tiny, tmp_path):
    from scenetext.recognition.lm import WordTable

    path = tmp_path / "prior.npz"
    tiny.save(path)
    with np.load(path) as z:
        fields = {k: z[k] for k in z.files}
    cases = {"other.npz": dict(fields, kind=np.array("crnn")), "short.npz": dict(fields, ngram=fields["ngram"][0]),
             "unsorted.npz": dict(fields, keys=fields["keys"][::-1])}
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
    np.savez(tmp_path / "pickled.npz", kind=np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    os.mkfifo(tmp_path / "fifo.npz")
    for name in [*cases, "pickled.npz", "junk.npz", "missing.npz", "fifo.npz"]:
        with pytest.raises(ValueError, match="cannot load the language prior") as err:
            WordPrior.load(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="sorted"):
        WordTable.from_arrays(np.array([b"b", b"a"]), np.array([1.0, 2.0]))


def test_the_shipped_prior_is_what_the_builder_makes_from_wordfreq(english):
    from scenetext.recognition.lm import ENGLISH_PRIOR, build_english_prior, wordfreq_source
    from scenetext.shipped import find, model_path

    assert find(ENGLISH_PRIOR).role == "language prior"
    with np.load(model_path(ENGLISH_PRIOR), allow_pickle=False) as z:
        source = str(z["source"])
    if source != wordfreq_source():
        pytest.skip(f"the shipped prior was built from {source}, this environment has {wordfreq_source()}")
    built = build_english_prior()
    for mine, theirs in zip(english.frequencies.arrays(), built.frequencies.arrays()):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(english.ngram.table, built.ngram.table)
    assert english.name == built.name == "en"


def test_tokens_fold_case_digits_and_punctuation():
    assert tokens("SCH00L") == ["sch00l"]
    assert tokens("$2.50") == ["000"]
    assert tokens("e-mail") == ["email"]
    assert tokens("Don't STOP!") == ["don't", "stop"]
    assert tokens("...") == []


def test_ngram_probabilities_add_up_to_one():
    model = CharNgram.train(["house", "horse", "hose"], [3.0, 1.0, 1.0], order=3)
    assert model.table.shape == (NUM_SYMBOLS,) * 3
    np.testing.assert_allclose(np.exp(model.table.astype(np.float64)).sum(-1), 1.0, atol=1e-5)
    assert model.logp("house") > model.logp("hoxse")  # seen n-grams are likelier


def test_prior_prefers_known_and_frequent_words(tiny):
    assert tiny.logp("house") > tiny.logp("horse") > tiny.logp("hovse")
    assert tiny.logp("HOUSE") == tiny.logp("house") == tiny.logp("house!")  # blind to case and punctuation
    assert tiny.score("House").known and not tiny.score("Hovse").known and not tiny.score("").known


# ------------------------------------------------------------------------- the search


@pytest.mark.parametrize("first", ["u", "r"])
def test_frequent_word_beats_rarer_one_at_equal_visual_score(tiny, first):
    second = "r" if first == "u" else "u"
    lp = frames("h", "o", {first: 0.49, second: 0.49}, "s", "e")
    assert read(lp, tiny) == "house"
    upper = frames("H", "O", {first.upper(): 0.49, second.upper(): 0.49}, "S", "E")
    assert read(upper, tiny) == "HOUSE"  # the prior sees the folded view; the reading keeps its case
    # Without the prior, the tie is the argmax's: "horse" ('r' has the lower class index).
    assert greedy_decode(lp, CHARSET).text == "horse"


def test_frequent_word_wins_with_the_english_prior(english):
    lp = frames("H", "o", {"r": 0.49, "u": 0.49}, "s", "e")
    assert read(lp, english) == "House"
    assert read(frames("C", "h", "a", "r", "t", "e", {"": 0.6, "r": 0.4}, "e", "d"), english) == "Chartered"


@pytest.mark.parametrize("sure", [0.96, 0.9])
def test_confident_non_word_is_kept(tiny, sure):
    # "Genesis" is two characters away, each seen at 0.04 (or 0.1): 6.4 (4.4) nats less likely to
    # the eye, beyond the margin; the readings one character away are not words.
    other = 1.0 - sure - 0.01
    lp = frames("G", "e", "n", {"a": sure, "e": other}, {"x": sure, "s": other}, "i", "s")
    assert read(lp, tiny) == "Genaxis"


@pytest.mark.parametrize("spec, text", [
    (("A", {"1": 0.96, "l": 0.03}, "2"), "A12"),
    (({"$": 0.96, "S": 0.03}, "2", {".": 0.96, ",": 0.03}, "5", "0"), "$2.50"),
    (("G", "e", "n", {"a": 0.96, "e": 0.03}, {"x": 0.96, "s": 0.03}, "i", "s"), "Genaxis"),
])
def test_confident_codes_prices_and_names_stay_as_read(tiny, english, spec, text):
    lp = frames(*spec)
    for prior in (tiny, english):
        assert read(lp, prior) == text
        assert read(lp, prior, weight=5.0) == text  # however much the prior counts


def test_punctuation_and_case_stay_as_read(tiny):
    # A faint full stop after a word: the prior cannot tell "Diamond" from "Diamond.", the eye decides.
    assert read(frames("D", "i", "a", "m", "o", "n", "d", {"": 0.7, ".": 0.29}), tiny, weight=5.0) == "Diamond"
    assert read(frames("D", "i", "a", "m", "o", "n", "d", {".": 0.7, "": 0.29}), tiny, weight=5.0) == "Diamond."
    assert read(frames("C", "a", {"F": 0.6, "f": 0.39}, "E"), tiny) == "CaFE"


def test_the_prior_never_turns_a_letter_into_a_mark_to_make_a_word(tiny):
    # "housed" is not a word and "house!" folds to one, but the prior is blind to the mark: an
    # unsure last letter read as 'd' stays a letter, however much the prior counts.
    # (Without the near-word look-up, which may drop the unsure 'd' but never writes a mark.)
    last = {"d": 0.5, "!": 0.48}
    assert read(frames("h", "o", "u", "s", "e", last), tiny, weight=5.0, near_words=False) == "housed"
    assert read(frames("H", "O", "U", "S", "E", {"D": 0.5, "?": 0.48}), tiny, near_words=False) == "HOUSED"
    # A mark beside a digit is a number's ("$30": a price, not the non-word "S30").
    assert read(frames({"S": 0.5, "$": 0.48}, "3", "0"), tiny, near_words=False) == "$30"
    # A mark the reading has is kept while the prior mends a letter beside it.
    assert read(frames("h", "o", {"v": 0.49, "u": 0.48}, "s", "e", "!"), tiny) == "house!"


def test_prior_never_adds_a_character_no_frame_supports(tiny):
    # The 'e' of "house" is seen at 0.02 beside a blank at 0.96: however much the prior would pay
    # for "house", the 'e' is not read.
    assert read(frames("h", "o", "u", "s", {"": 0.96, "e": 0.02}), tiny, weight=100.0) == "hous"
    # Random frames that show each letter of "house" only faintly (0.01, beside a class over 30
    # times likelier): the prior may only choose among what the frames show.
    rng = np.random.default_rng(0)
    for _ in range(30):
        spec = []
        for letter in "house":
            shown = rng.choice([c for c in "abcdfgijklmnpqrtvwxyz"] + [""], size=3, replace=False)
            spec.append({letter: 0.01, **{str(c): float(p) for c, p in zip(shown, rng.dirichlet(np.ones(3)) * 0.97)}})
        lp = frames(*spec)
        decoder = PriorDecoder(tiny, weight=100.0)
        out = decoder.decode(lp, CHARSET)
        followed = lp >= lp.max(1, keepdims=True) - decoder.margin
        assert out.text != "house"
        for char, (start, end) in zip(out.text, out.char_frames):
            assert followed[start:end, CHARSET.encode(char)[0]].any()  # each character sits on frames that show it


# ------------------------------------------------------------------------- near words


def unsure_diamond(seen_m: float = 0.15, seen_n: float = 0.15) -> np.ndarray:
    """"Diamond" with its 'm' and 'n' each read as a likelier wrong letter ('r', 'u' at 0.75): the
    word is 2 x 1.6 nats less likely to the eye than the reading "Diaroud", beyond the beam's
    3-nat margin, and each of its letters is still within 3 nats on its frame."""
    return frames("D", "i", "a", {"r": 0.75, "m": seen_m}, "o", {"u": 0.75, "n": seen_n}, "d")


def test_a_non_word_two_unsure_letters_from_a_word_becomes_the_word(tiny):
    lp = unsure_diamond()
    assert greedy_decode(lp, CHARSET).text == "Diaroud"
    assert read(lp, tiny, near_words=False) == "Diaroud"  # the beam's alternatives are beyond its margin
    out = PriorDecoder(tiny).decode(lp, CHARSET)
    assert out.text == "Diamond"
    # its characters' frames and confidences are those of its alignment: 'm' seen at 0.15 on frame 6
    assert out.char_frames[3] == (6, 7) and out.char_confidences[3] == pytest.approx(0.15, abs=1e-6)
    assert read(unsure_diamond(), tiny, weight=0.0) == "Diaroud"  # no prior, no look-up


def test_near_words_work_with_a_prior_of_a_plain_dict(tiny):
    words = {w: tiny.frequencies[w] for w in tiny.frequencies} | {"café": 1e-3}  # a non-ASCII word too
    assert read(unsure_diamond(), WordPrior(words, tiny.ngram)) == "Diamond"


def test_a_near_word_never_changes_a_letter_read_surely(tiny):
    # The 'r' read at 0.82 (>= near_unsure): "Diamond" would change a sure letter, so the reading stays.
    lp = frames("D", "i", "a", {"r": 0.82, "m": 0.15}, "o", {"u": 0.82, "n": 0.15}, "d")
    assert read(lp, tiny) == "Diaroud"
    assert read(lp, tiny, near_unsure=0.9) == "Diamond"


def test_a_near_word_must_be_shown_by_the_frames_and_close_to_the_eye(tiny):
    # 'm' at 0.03 beside 'r' at 0.75: 3.2 nats, beyond what a frame follows; the word is not read.
    assert read(unsure_diamond(seen_m=0.03), tiny) == "Diaroud"
    # Each letter within 3 nats, but together 2 x 2.5 nats: past a near margin of 5, within 8.
    lp = unsure_diamond(seen_m=0.06, seen_n=0.06)
    assert read(lp, tiny, near_margin=5.0) == "Diaroud"
    assert read(lp, tiny, near_margin=8.0) == "Diamond"


def test_near_words_leave_codes_short_words_and_known_words_alone(tiny):
    # digits in the reading, fewer than near_min_length letters, or a word already: no look-up
    assert read(frames("D", "i", "a", {"r": 0.82, "m": 0.15}, "o", {"u": 0.82, "n": 0.15}, "d", "2"), tiny,
                near_unsure=1.0) == "Diaroud2"
    assert read(frames("h", {"a": 0.75, "o": 0.22}, "r", "s"), tiny, near_unsure=1.0) == "hars"
    assert read(frames("h", "o", "r", "s", "e"), tiny) == "horse"  # not turned into the likelier "house"


def test_a_near_word_keeps_the_readings_case_and_punctuation(tiny):
    lp = frames("D", "I", "A", {"R": 0.82, "M": 0.15}, "O", {"U": 0.82, "N": 0.15}, "D", "!")
    assert read(lp, tiny, near_unsure=0.9) == "DIAMOND!"


def test_weight_zero_is_the_greedy_reading(tiny):
    rng = np.random.default_rng(1)
    cases = [frames("h", "o", {"u": 0.49, "r": 0.49}, "s", "e"),
             frames("G", "e", "n", {"a": 0.6, "e": 0.39}, {"x": 0.5, "s": 0.49}, "i", "s"),
             frames("a", {"": 0.5, "a": 0.49}, "a"),
             frames("D", "i", "a", "m", "o", "n", "d", {"": 0.6, ".": 0.39})]
    cases += [np.log(np.maximum(rng.dirichlet(np.full(CHARSET.num_classes, 0.05), size=int(rng.integers(4, 30))),
                                1e-12)) for _ in range(20)]
    for lp in cases:
        greedy = greedy_decode(lp, CHARSET)
        beam = PriorDecoder(tiny, weight=0.0).decode(lp, CHARSET)
        assert (beam.text, beam.confidence, beam.char_confidences, beam.char_frames) == (
            greedy.text, greedy.confidence, greedy.char_confidences, greedy.char_frames)


def test_beam_puts_the_greedy_reading_first_and_align_matches_it():
    lp = frames("c", {"a": 0.5, "o": 0.48}, "t", {"": 0.5, "s": 0.49})
    greedy = greedy_decode(lp, CHARSET)
    candidates = prefix_beam(lp)
    assert CHARSET.decode(candidates[0].labels) == greedy.text
    assert {CHARSET.decode(c.labels) for c in candidates} >= {"cat", "cot", "cats", "cots"}
    frames_, confs = align(lp, tuple(CHARSET.encode(greedy.text)))
    assert frames_ == greedy.char_frames
    np.testing.assert_allclose(confs, greedy.char_confidences)


def test_changed_reading_has_positions_and_visual_confidence(tiny):
    lp = frames("h", "o", {"r": 0.49, "u": 0.49}, "s", "e")
    out = PriorDecoder(tiny).decode(lp, CHARSET)
    assert out.text == "house" and len(out.char_frames) == 5
    assert out.char_confidences[2] == pytest.approx(0.49)
    assert out.confidence < greedy_decode(lp, CHARSET).confidence + 1e-9


# ------------------------------------------------------------------------- the options


def test_lm_options_are_checked():
    for bad in ("fr", -1.0, float("nan"), [1]):
        with pytest.raises(ValueError):
            check_lm(bad)
    assert lm_decoder(None) is None and lm_decoder(False) is None
    with pytest.raises(ValueError, match="lm"):
        Reader(lm="fr")
    with pytest.raises(ValueError, match="lexicon"):
        Reader(lm=True, lexicon=["house"])
    with pytest.raises(ValueError, match="loads the recognizer"):
        Reader(recognizer=object(), lm=True)


def test_lm_decoder_builds_the_english_prior(english):
    decoder = lm_decoder(True)
    assert decoder.prior is english and decoder.weight == PriorDecoder(english).weight
    assert lm_decoder("en").prior is english
    assert lm_decoder(0.25).weight == 0.25


def test_recognizer_decodes_with_the_prior(recognizer, tiny):
    lp = frames("h", "o", {"r": 0.49, "u": 0.49}, "s", "e")
    recognizer.lm = PriorDecoder(tiny)
    try:
        assert recognizer.decode(lp).text == "house"
    finally:
        recognizer.lm = None
    assert recognizer.decode(lp).text == "horse"


def test_cli_run_passes_lm(monkeypatch, tmp_path, recognizer):
    calls = []

    def make_reader(**options):
        calls.append(options)
        return Reader(BlobDetector(), recognizer, min_confidence=0)

    monkeypatch.setattr(cli, "make_reader", make_reader)
    Image.fromarray(dark_boxes_image()).save(tmp_path / "a.png")
    runner = CliRunner()
    assert runner.invoke(cli.main, ["run", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--lm"]).exit_code == 0
    assert runner.invoke(cli.main, ["run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2")]).exit_code == 0
    assert runner.invoke(cli.main, ["run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o3"), "--no-lm"]).exit_code == 0
    assert [c.get("lm") for c in calls] == ["en", "auto", False]


def test_the_reader_reads_with_the_prior_by_default_and_not_with_a_lexicon(recognizer):
    assert Reader()._lm == "en"
    assert Reader(lexicon=["house"])._lm is None
    assert Reader(BlobDetector(), recognizer)._lm is None  # a recogniser made elsewhere keeps its decoding
    assert Reader(lm=False)._lm is False
    with pytest.raises(ValueError, match="not with a lexicon"):
        Reader(lexicon=["house"], lm=True)
