"""Sharded synthetic word corpora: written by worker processes, resumed, streamed to training."""

from __future__ import annotations

import json
import pickle

import pytest
from click.testing import CliRunner

from scenetext.data.shards import CorpusError, read_manifest, read_shard, shard_name
from scenetext.synth import sources
from scenetext.synth.corpus_writer import write_corpus
from scenetext.synth.datasets import SynthWordDataset
from scenetext.synth.synth_writer import encode_jpg
from scenetext.train.corpus import ShardedCorpus, open_corpora

N, SHARD, SEED = 300, 64, 3  # 5 shards: 4 of 64 crops and one of 44


def _plain_sources(mp: pytest.MonkeyPatch) -> None:
    """Plain-colour backgrounds and the built-in words: quick to load in every worker (the
    workers inherit the environment)."""
    mp.setenv(sources.BACKGROUNDS_ENV, sources.NONE)
    mp.setenv(sources.WORDS_ENV, sources.NONE)


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    _plain_sources(monkeypatch)


@pytest.fixture(scope="module")
def expected():
    """Crop i of the corpus is SynthWordDataset item i: its label and its JPEG bytes."""
    with pytest.MonkeyPatch.context() as mp:
        _plain_sources(mp)
        ds = SynthWordDataset(N, SEED)
        items = [ds[i] for i in range(N)]
    return [label for _, label in items], [encode_jpg(img, 95) for img, _ in items]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    done = []
    with pytest.MonkeyPatch.context() as mp:
        _plain_sources(mp)
        report = write_corpus(out, N, seed=SEED, workers=2, shard_size=SHARD, progress=done.append)
    assert (report.shards, report.kept, report.rendered, report.crops) == (5, 0, 5, N)
    assert sorted(done) == [44, 64, 64, 64, 64]
    return out


def test_two_workers_write_the_datasets_crops_as_shards_with_a_manifest(corpus_dir, expected):
    labels, jpegs = expected
    assert sorted(p.name for p in corpus_dir.iterdir()) == sorted([shard_name(k) for k in range(5)] + ["manifest.json"])
    manifest = read_manifest(corpus_dir)
    assert manifest.complete and manifest.count == N and manifest.shard_size == SHARD
    assert manifest.settings["seed"] == SEED and manifest.settings["backgrounds"] == "none"
    assert [(e.file, e.first, e.count) for e in sorted(manifest.shards, key=lambda e: e.first)] == \
        [(shard_name(k), 64 * k, 44 if k == 4 else 64) for k in range(5)]
    assert json.loads((corpus_dir / "manifest.json").read_text())["complete"] is True
    got_labels, got_jpegs = [], []
    for k in range(5):
        shard = read_shard(corpus_dir / shard_name(k))
        assert shard.first == 64 * k
        got_labels += [str(t) for t in shard.labels]
        got_jpegs += [shard.encoded(j).tobytes() for j in range(len(shard))]
        img, label = shard.decode(0)
        assert img.shape[0] == 32 and img.ndim == 3 and label == labels[64 * k]
    assert got_labels == labels  # in corpus order, whichever worker wrote which shard
    assert got_jpegs == jpegs  # the same pixels, byte for byte


def test_a_rerun_keeps_finished_shards_and_renders_only_what_is_missing(corpus_dir, tmp_path, expected):
    import shutil

    out = tmp_path / "c"
    shutil.copytree(corpus_dir, out)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.npz")}
    again = write_corpus(out, N, seed=SEED, workers=2, shard_size=SHARD)
    assert (again.kept, again.rendered) == (5, 0)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.npz")} == before

    # killed mid-way: one shard never written, another left as a temporary file
    (out / shard_name(2)).unlink()
    (out / f".{shard_name(3)}.abcd1234.tmp").write_bytes(b"half a shard")
    resumed = write_corpus(out, N, seed=SEED, workers=0, shard_size=SHARD)
    assert (resumed.kept, resumed.rendered) == (4, 1)
    assert not list(out.glob(".*.tmp"))
    for name, stat in before.items():
        if name != shard_name(2):
            assert (out / name).stat().st_mtime_ns == stat[1], name
    assert (out / shard_name(2)).read_bytes() == (corpus_dir / shard_name(2)).read_bytes()

    # a larger -n: the short last shard is filled up, one more is added; the rest are kept
    grown = write_corpus(out, N + 30, seed=SEED, workers=0, shard_size=SHARD)
    assert (grown.shards, grown.kept, grown.rendered) == (6, 4, 2)
    manifest = read_manifest(out)
    assert manifest.complete and [e.count for e in sorted(manifest.shards, key=lambda e: e.first)][-2:] == [64, 10]
    assert [str(t) for t in read_shard(out / shard_name(4)).labels][:44] == expected[0][256:]

    with pytest.raises(CorpusError, match=r"manifest\.json.*seed 3, not 4"):
        write_corpus(out, N, seed=4, workers=0, shard_size=SHARD)
    with pytest.raises(CorpusError, match="shard size 64, not 32"):
        write_corpus(out, N, seed=SEED, workers=0, shard_size=32)


def test_the_training_stream_reads_every_crop_once_per_pass_shuffled_in_a_few_shards(corpus_dir, expected):
    labels, _ = expected
    corpus = ShardedCorpus.open([corpus_dir], seed=0, mix=2)
    assert len(corpus) == N
    located = [corpus.locate(i) for i in range(N)]
    flat = [64 * k + row for k, row in located]
    assert sorted(flat) == list(range(N))  # each crop once per pass
    assert flat != list(range(N))
    first_batch = {k for k, _ in located[:32]}
    assert len(first_batch) == 2  # mixed across shards, and within two of them only (mix=2)
    second_pass = [corpus.locate(N + i) for i in range(N)]
    assert second_pass != located and sorted(64 * k + r for k, r in second_pass) == list(range(N))
    for i in (0, 7, 150, N + 3):
        img, label = corpus.get(i)
        k, row = corpus.locate(i)
        assert label == labels[64 * k + row] and img.shape[0] == 32
        assert len(corpus._loaded) <= 2  # bounded: at most `mix` shards in memory
    copy = pickle.loads(pickle.dumps(corpus))  # what a data worker gets: same order, empty cache
    assert not copy._loaded and [copy.locate(i) for i in range(N)] == located
    assert [ShardedCorpus.open([corpus_dir], seed=1, mix=2).locate(i) for i in range(N)] != located


def test_training_samples_come_from_the_corpus_not_the_renderer(corpus_dir, expected):
    from scenetext.recognition.charset import Charset
    from scenetext.train.rec_data import WordSampleSource

    def no_renderer():
        raise AssertionError("rendered instead of read from the corpus")

    charset = Charset.default()
    corpus = ShardedCorpus.open([corpus_dir], seed=0)
    source = WordSampleSource(charset, real_ratio=0.0, seed=0, renderer_factory=no_renderer, corpus=corpus)
    for i in range(40):
        sample = source(i)
        _, label = corpus.get(i)
        if isinstance(sample, str):  # a label outside the charset is skipped, never replaced
            assert not charset.covers(label)
            continue
        assert sample.image.shape[0] == 32 and sample.ids == charset.encode(label) and sample.original


def test_train_rec_streams_a_corpus_and_resumes_exactly(corpus_dir, tmp_path, monkeypatch, capsys):
    import torch

    from scenetext import checkpoint
    from scenetext.train import rec_data
    from scenetext.train.recognizer import RecTrainConfig, train

    def no_renderer():
        raise RuntimeError("rendered")

    monkeypatch.setattr(rec_data, "word_renderer", no_renderer)
    common = dict(steps=8, batch_size=8, bucket=2, warmup=1, corpus=[str(corpus_dir)], workers=0, threads=1,
                  checkpoint_minutes=60, val_every=1000)
    threads = torch.get_num_threads()
    try:
        train(RecTrainConfig(out=str(tmp_path / "a"), **common))
        train(RecTrainConfig(out=str(tmp_path / "b"), stop_at=4, **common))
        train(RecTrainConfig(out=str(tmp_path / "b"), **common))
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert f"corpus {corpus_dir}: 300 crops in 5 shards" in printed
    a, b = (checkpoint.load(tmp_path / run / "last.pt", kind="crnn") for run in ("a", "b"))
    assert a["train"]["step"] == b["train"]["step"] == 8
    assert not [k for k in a["train"]["skipped"] if k.startswith("error")], a["train"]["skipped"]
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=1e-4, atol=1e-5)


def test_bad_corpora_are_one_line_errors_naming_the_file(corpus_dir, tmp_path):
    import shutil

    with pytest.raises(CorpusError, match=r"manifest\.json: no such file"):
        open_corpora([tmp_path])
    out = tmp_path / "c"
    shutil.copytree(corpus_dir, out)
    (out / shard_name(1)).write_bytes(b"not a shard")
    with pytest.raises(CorpusError, match=rf"{shard_name(1)}: 11 bytes"):
        open_corpora([out])
    with pytest.raises(CorpusError, match=rf"{shard_name(1)}: not a readable corpus shard"):
        read_shard(out / shard_name(1))
    (out / "manifest.json").write_text("{}")
    with pytest.raises(CorpusError, match="not a scenetext-word-shards manifest"):
        read_manifest(out)


def test_synth_words_cli_writes_a_corpus_and_train_rec_refuses_a_folder_without_one(tmp_path):
    from scenetext.cli import main

    runner = CliRunner()
    out = tmp_path / "words"
    res = runner.invoke(main, ["synth", "words", "-n", "20", "-o", str(out), "--workers", "0", "--shard-size", "8",
                               "--backgrounds", "none", "--words", "none"])
    assert res.exit_code == 0, res.output
    assert "3 shards" in res.output and read_manifest(out).complete
    again = runner.invoke(main, ["synth", "words", "-n", "20", "-o", str(out), "--workers", "0", "--shard-size", "8",
                                 "--backgrounds", "none", "--words", "none"])
    assert again.exit_code == 0 and "0 rendered; 3 finished shards kept" in again.output
    clash = runner.invoke(main, ["synth", "words", "-n", "20", "-o", str(out), "--workers", "0", "--seed", "1",
                                 "--shard-size", "8", "--backgrounds", "none", "--words", "none"])
    assert clash.exit_code == 1 and "other settings" in clash.output and "Traceback" not in clash.output
    refused = runner.invoke(main, ["train", "rec", "-o", str(tmp_path / "run"), "--corpus", str(tmp_path),
                                   "--backgrounds", "none", "--words", "none"])
    assert refused.exit_code == 1 and "manifest.json: no such file" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
