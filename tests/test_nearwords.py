"""The word index behind the recogniser's near-word look-up: it finds exactly the words within
the edit distance, however its bigram filter prunes."""

from __future__ import annotations

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from scenetext.recognition.nearwords import WordIndex

WORDS = ["results", "jesuits", "christmas", "stadium", "sephora", "other", "otter", "oliver", "fuse",
         "tier", "tied", "house", "horse", "a", "ab", "abc", "jackson", "markson", "western", "eastern"]


def brute_force(words, reading, k):
    return sorted((Levenshtein.distance(reading, w), w) for w in words if Levenshtein.distance(reading, w) <= k)


@pytest.mark.parametrize("reading, k", [("resuits", 2), ("churistnas", 2), ("sraium", 2), ("sefiora", 2),
                                        ("otsver", 2), ("gfuse", 1), ("tierd", 1), ("ab", 1), ("x", 1),
                                        ("", 1), ("mackson", 0), ("jackson", 0), ("wesferm", 3)])
def test_near_finds_exactly_the_words_within_the_distance(reading, k):
    index = WordIndex(WORDS)
    found = index.near(reading, k)
    assert sorted((n.distance, n.word) for n in found) == brute_force(WORDS, reading, k)
    assert [n.distance for n in found] == sorted(n.distance for n in found)  # nearest first
    assert all(WORDS[n.index] == n.word for n in found)


def test_the_filter_never_drops_a_near_word_on_random_lists():
    rng = np.random.default_rng(0)
    letters = np.array(list("abcde"))  # few letters: many shared bigrams, many near words
    for _ in range(40):
        words = sorted({"".join(rng.choice(letters, size=int(rng.integers(1, 9)))) for _ in range(300)})
        index = WordIndex(np.array([w.encode() for w in words]))  # the byte-array form a WordTable stores
        for _ in range(10):
            reading = "".join(rng.choice(letters, size=int(rng.integers(1, 10))))
            k = int(rng.integers(0, 3))
            assert sorted((n.distance, n.word) for n in index.near(reading, k)) == brute_force(words, reading, k)
    # the filter does prune: a long reading's candidates are a small share of the list
    assert len(index.candidates("abcdeabcd", 1)) < len(words) / 2


def test_empty_index_and_negative_distance():
    assert WordIndex([]).near("house", 2) == []
    assert WordIndex(WORDS).near("house", -1) == []


def test_unicode_words_are_matched_by_characters():
    index = WordIndex(["café", "cafe", "naïve", "straße"])
    assert sorted(n.word for n in index.near("cafè", 1)) == ["cafe", "café"]
    assert [n.word for n in index.near("strasse", 2)] == ["straße"]
    with pytest.raises(ValueError, match="ASCII"):
        WordIndex(np.array(["café".encode()]))


def test_a_large_lexicon_finds_what_a_full_scan_finds():
    from scenetext.evaluation.text import edit_distance
    from scenetext.recognition.decode import Lexicon

    rng = np.random.default_rng(1)
    letters = np.array(list("abcdeABC"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(1, 9)))) for _ in range(3000)]
    lexicon = Lexicon(words, full_search_limit=10)
    for reading in ["abc", "Abcde", "eeeeaaab", "ba", "cabbage"]:
        expected = [w for w in lexicon.words if edit_distance(w.lower(), reading.lower()) <= lexicon.max_distance]
        assert lexicon.candidates(reading) == expected
