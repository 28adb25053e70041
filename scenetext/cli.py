"""Command line: a thin click layer over the Python API.

    scenetext run PHOTO_OR_FOLDER... -o OUT    read text in photos (JSON + annotated copies + report.html)
    scenetext report OUT                       (re)build OUT/report.html of a run's output folder
    scenetext synth words -n 100000 -o DIR     synthetic word crops (a sharded corpus, or labels.tsv)
    scenetext synth scenes -n 5000 -o DIR      synthetic scenes (gt/ words, gt_lines/ lines)
    scenetext train rec ...                    train the CRNN recogniser
    scenetext train det ...                    train the CTPN detector
    scenetext eval rec DIR...                  word accuracy on labelled crop folders
    scenetext eval det DIR                     detection precision/recall/hmean on a detection set
    scenetext eval e2e DIR                     ICDAR 2015 end-to-end scores on a detection set
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from . import __version__
from .batch import FORMATS
from .text import printable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scenetext")
def main():
    """scenetext: offline scene-text OCR (CTPN detector + CRNN recogniser) for CPUs."""
    from .memory import bound_arenas, bound_kernel_cache, tensor_huge_pages

    # This process is the command's own: keep its kernel cache from growing with every new input
    # shape over a long run, its threads on one heap and torch's big tensors page-aligned on huge pages,
    # before torch is imported or any thread starts (see scenetext.memory).
    bound_kernel_cache()
    bound_arenas()
    tensor_huge_pages()


# --------------------------------------------------------------------------------- run
def make_reader(weights_det=None, weights_rec=None, max_side=None, min_confidence=0.3, lexicon=None,
                level="line", zoom=None, backend=None, onnx_dir=None, lm="auto"):
    """The :class:`~scenetext.reader.Reader` used by ``run`` and ``eval e2e`` (tests replace this)."""
    from .reader import Reader

    return Reader(detector_weights=weights_det, recognizer_weights=weights_rec, max_side=max_side,
                  min_confidence=min_confidence, lexicon=lexicon, level=level, zoom=zoom, backend=backend,
                  onnx_dir=onnx_dir, lm=lm)


def _checked(kind: str):
    """A click callback refusing what the API refuses, with the API's message (see
    :mod:`scenetext.options`); ``lexicon``: a word-list file that cannot be used."""

    def callback(ctx, param, value):
        from . import options

        if value is None:
            return value
        try:
            if kind == "lexicon":
                from .recognition.decode import Lexicon

                Lexicon.from_file(value)
            else:
                options.check_confidence(value) if kind == "confidence" else options.check_side(value)
        except ValueError as err:
            raise click.BadParameter(printable(str(err))) from None
        return value

    return callback


class _PathOrURI(click.Path):
    """A local path, checked as :class:`click.Path` checks it, or the URI of a filesystem pyarrow
    opens (``s3://bucket/photos``), which becomes a :class:`~scenetext.storage.Location`."""

    def convert(self, value, param, ctx):
        from .storage import StorageError, is_uri, locate

        if not is_uri(value):
            return super().convert(value, param, ctx)
        try:
            where = locate(value)
        except StorageError as err:
            self.fail(printable(str(err)), param, ctx)
        if self.exists and not (where.store.is_dir(where.path) or where.store.is_file(where.path)):
            self.fail(f"{printable(value)}: does not exist", param, ctx)
        return where


LM_HELP = ("re-rank the readings the image supports by English word frequencies (default; off with a "
           "--lexicon); confident readings, case and punctuation stay as read. --no-lm: greedy decoding")
BACKEND_HELP = ("where the networks run (default: onnxruntime for the shipped models where it is installed, "
                "without torch; else torch)")
ZOOM_HELP = ("also look again at this short side (e.g. 1400) where the detector saw weak signs of text: finds "
             "more small text, at a quarter to a third more detection time")


@main.command("run")
@click.argument("inputs", nargs=-1, required=True, type=_PathOrURI(exists=True, path_type=Path))
@click.option("-o", "--out", type=_PathOrURI(file_okay=False, path_type=Path), default=Path("scenetext-out"),
              show_default=True, help="output folder (or URI: s3://bucket/prefix, ...)")
@click.option("-r", "--recursive", is_flag=True, help="also read images in subfolders of folder inputs")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True,
              help="json: OUT/<name>.json per image; jsonl: one OUT/results.jsonl; txt: OUT/<name>.txt")
@click.option("--no-annotate", is_flag=True, help="do not write OUT/<name>.annotated.jpg")
@click.option("--level", type=click.Choice(["line", "word"]), default="line", show_default=True,
              help="detect text lines (their word boxes read one by one) or words")
@click.option("--min-confidence", type=float, default=0.3, show_default=True, callback=_checked("confidence"),
              help="drop word boxes (and lines left empty) read with a lower confidence (0-1)")
@click.option("--max-side", type=int, callback=_checked("side"), help="cap on the long side the detector sees")
@click.option("--zoom", type=int, callback=_checked("side"), help=ZOOM_HELP)
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False, path_type=Path), callback=_checked("lexicon"),
              help="word list (one per line) to constrain reading to")
@click.option("--lm/--no-lm", default=None, help=LM_HELP)
@click.option("--skip-existing", is_flag=True, help="skip images whose outputs exist (resume a run)")
@click.option("-j", "--jobs", "workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="threads decoding and writing images beside the models")
@click.option("-q", "--quiet", is_flag=True, help="print only errors")
@click.option("--weights-det", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="detector model file (default: shipped)")
@click.option("--weights-rec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="recogniser model file (default: shipped)")
@click.option("--models", "models_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="model folder (manifest.json), e.g. written by 'scenetext finetune'; roles it lacks use "
                   "the shipped models, --weights-det/--weights-rec win over it")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), help=BACKEND_HELP)
@click.option("--onnx-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="with onnxruntime: networks written by 'scenetext export --onnx' (default: exported in memory)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", metavar="[local|ADDRESS]",
              help="read on a Ray cluster: 'local' (--ray alone) starts one on this machine, ADDRESS joins one "
                   "(needs scenetext[ray]; paths must be visible to every node, or URIs such as s3://...)")
@click.option("--ray-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="with --ray: actors, each loading the models once and using one CPU")
def run(inputs, out, recursive, fmt, no_annotate, level, min_confidence, max_side, zoom, lexicon, skip_existing,
        workers, quiet, weights_det, weights_rec, models_dir, backend, onnx_dir, ray_address, ray_workers, lm):
    """Find and read the text in photos.

    INPUT is any mix of image files and folders. For each image, OUT/<name>.json holds the lines
    (polygon, text, confidence, words) and OUT/<name>.annotated.jpg shows them drawn on the photo;
    <name> is the image's path relative to the folder given, or its file name. OUT/summary.json
    lists counts and failures. Exit status: 0 all read, 1 some failed (the rest are done), 2 usage.

    \b
    Examples:
      scenetext run photo.jpg                     # table of lines; ./scenetext-out/photo.jpg.json
      scenetext run photos/ -o out/ --recursive   # a whole tree, with a progress bar
      scenetext run photos/ --format jsonl --no-annotate
      scenetext run photos/ --skip-existing       # resume an interrupted run
      scenetext run scan.png --level word --lexicon words.txt
      scenetext run s3://bucket/photos -o s3://bucket/ocr --ray   # any filesystem pyarrow opens
    """
    from rich.console import Console

    from .batch import BatchRun
    from .storage import locate

    where = locate(out)
    try:
        where.store.make_dir(where.path)
    except OSError as err:
        raise click.BadParameter(printable(str(err)), param_hint="'-o' / '--out'") from None
    if models_dir is not None:
        weights_det, weights_rec = _folder_weights(models_dir, weights_det, weights_rec)
    batch = BatchRun(inputs, out, recursive=recursive, fmt=fmt, annotate=not no_annotate, skip_existing=skip_existing)
    reader = None
    if batch.todo:  # also with --ray: the same clear errors before any image is touched
        reader = _load_reader(weights_det, weights_rec, max_side, min_confidence, lexicon, level, zoom,
                              backend=backend, onnx_dir=onnx_dir, lm=_lm_choice(lm))

    console = Console(stderr=True, highlight=False)
    pages = []

    def report(failure) -> None:
        console.print(f"error: {printable(failure.path)}: {printable(failure.reason)}", markup=False, soft_wrap=True)

    def notice(note) -> None:
        if not quiet:
            console.print(f"warning: {printable(note.path)}: {printable(note.message)}", markup=False, soft_wrap=True)

    for failure in batch.failures:
        report(failure)
    hidden = quiet or len(batch.todo) < 2 or not console.is_terminal
    with _progress(console, len(batch.todo), hidden=hidden) as advance:

        def failed(failure) -> None:
            report(failure)
            advance()

        def finished(job, page) -> None:
            if len(batch.jobs) == 1:
                pages.append(page)
            advance()

        def report_failed(reason) -> None:
            console.print(f"warning: {printable(reason)}", markup=False, soft_wrap=True)

        if ray_address:
            reader = None  # each Ray actor loads its own
            options = dict(weights_det=weights_det, weights_rec=weights_rec, max_side=max_side, level=level,
                           min_confidence=min_confidence, lexicon=lexicon, zoom=zoom, backend=backend, onnx_dir=onnx_dir,
                           lm=_lm_choice(lm))
            summary = _run_on_ray(batch, ray_address, ray_workers, options, failed, lambda job, lines: advance(),
                                  report_failed)
        else:
            summary = batch.run(reader, workers, on_failure=failed, on_page=finished, on_notice=notice,
                                on_report_error=report_failed)
    if not quiet:
        _print_outcome(pages, batch.jobs, summary, out)
    click.get_current_context().exit(1 if summary.failures else 0)


def _folder_weights(folder: Path, weights_det, weights_rec):
    """--weights-det/--weights-rec, else the verified files of the model folder (None: shipped)."""
    from .shipped import ManifestError, role_path

    try:
        return (weights_det or role_path("detector", folder), weights_rec or role_path("recogniser", folder))
    except ManifestError as err:
        raise click.BadParameter(printable(str(err)), param_hint="'--models'") from None


def _lm_choice(flag: bool | None) -> str | bool:
    """The Reader's ``lm`` for ``--lm/--no-lm``: its default when neither is given."""
    return "auto" if flag is None else "en" if flag else False


def _load_reader(weights_det, weights_rec, max_side, min_confidence, lexicon, level, zoom=None, **runtime):
    """The reader with its models loaded, or a clear error before any image is touched: a usage
    error (exit 2) for options the Reader refuses, exit 1 for models that cannot be loaded.
    ``runtime``: ``backend`` and ``onnx_dir``, passed on where given."""
    runtime = {k: v for k, v in runtime.items() if v is not None}
    try:
        reader = make_reader(weights_det=weights_det, weights_rec=weights_rec, max_side=max_side,
                             min_confidence=min_confidence, lexicon=lexicon, level=level, zoom=zoom, **runtime)
    except ValueError as err:  # an option the Reader refuses: a usage error, as click's own
        raise click.UsageError(printable(str(err))) from None
    try:
        return reader.load_models()
    except (OSError, ValueError) as err:
        raise click.ClickException(f"cannot load the models: {printable(str(err))}") from None


def _run_on_ray(batch, address, workers, options, on_failure, on_page, on_report_error):
    """``batch`` read on Ray (see :mod:`scenetext.rayrun`), each actor building its reader with ``make_reader``."""
    import functools

    try:
        from .rayrun import RayRunError, RayUnavailable, run_on_ray
    except ImportError:
        raise click.ClickException("--ray needs Ray: pip install 'scenetext[ray]'") from None
    factory = functools.partial(make_reader, **{k: v for k, v in options.items() if v is not None})
    try:
        return run_on_ray(batch, factory, address=address, workers=workers, on_failure=on_failure, on_page=on_page,
                          on_report_error=on_report_error)
    except (RayUnavailable, RayRunError) as err:
        raise click.ClickException(printable(str(err))) from None


@contextlib.contextmanager
def _progress(console, total: int, hidden: bool):
    """A progress bar with ETA on stderr; yields ``advance()`` (a no-op when ``hidden``)."""
    if hidden:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), "ETA", TimeRemainingColumn()]
    with Progress("reading", *columns, console=console) as progress:
        task = progress.add_task("reading", total=total)
        yield lambda: progress.advance(task)


def _print_outcome(pages, jobs, summary, out: Path) -> None:
    """One image: its lines as a table. Several: the summary."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    stdout = Console(highlight=False)
    if len(jobs) == 1 and pages:
        lines = pages[0].lines
        stdout.print(f"{printable(jobs[0].name)}: {len(lines) or 'no'} line{'' if len(lines) == 1 else 's'} "
                     "of text",
                     markup=False, soft_wrap=True)
        if lines:
            table = Table("#", "text", "confidence")
            for i, line in enumerate(lines, 1):
                table.add_row(str(i), escape(printable(line.text)), f"{line.confidence:.2f}")
            stdout.print(table)
    elif len(jobs) == 1 and summary.skipped:
        stdout.print(f"{printable(jobs[0].name)}: skipped, its outputs exist", markup=False, soft_wrap=True)
    if len(jobs) > 1:
        stdout.print(f"{summary.processed} images read, {summary.lines} lines, {summary.failed} failed, "
                     f"{summary.skipped} skipped; {summary.images_per_second:.2f} images/s", markup=False)
    shown = printable(str(out))
    report = isinstance(out, Path) and (out / "report.html").is_file()
    stdout.print(f"outputs in {shown}/" + (f" (report: {shown}/report.html)" if report else ""),
                 markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------- report
@main.command("report")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(out):
    """Build OUT/report.html for the output folder of a run.

    The page shows the run's summary, a histogram of line confidences, the time per photo, one
    card per image (thumbnail and lines, filterable), the failures and the slowest photos. It
    needs no network: thumbnails are written under OUT/.report/. Every folder run writes it too.
    """
    from .report import write_report

    try:
        path = write_report(out)
    except OSError as err:
        raise click.ClickException(f"cannot write the report: {err}") from None
    click.echo(f"wrote {printable(str(path))}")


# --------------------------------------------------------------------------------- synth
@main.group()
def synth():
    """Write synthetic training data to disk."""


def _run_synth(kind: str, n: int, out: Path, seed: int, workers: int):
    from rich.progress import Progress

    from .synth import synth_writer

    write = synth_writer.write_words if kind == "words" else synth_writer.write_scenes
    with Progress() as progress:
        task = progress.add_task(f"rendering {kind}", total=n)
        write(out, n, seed=seed, workers=workers, progress=lambda k: progress.advance(task, k))
    click.echo(f"wrote {n} {kind} to {out}")


def _set_backgrounds(ctx, param, value):
    """--backgrounds: a folder of text-free photos for synthetic data, or 'none'; the default
    (the checkout's shared folder) must exist."""
    import os

    from .synth import sources

    folder = value or str(sources.DEFAULT_BACKGROUNDS)
    if folder != sources.NONE and not Path(folder).is_dir():
        raise click.BadParameter(f"{printable(folder)}: no such folder of background photos; pass --backgrounds DIR "
                                 "(text-free photos) or --backgrounds none for plain colours", param_hint="--backgrounds")
    os.environ[sources.BACKGROUNDS_ENV] = folder  # read by the renderers here and in data workers
    return folder


def _set_words(ctx, param, value):
    """--words: word-list files for synthetic text, or 'none' (the built-in list); by default the
    shared 90k lexicon and /usr/share/dict/words, of which one must exist."""
    import os

    from .synth import sources

    if value == (sources.NONE,):
        os.environ[sources.WORDS_ENV] = sources.NONE
        return value
    files = [Path(v) for v in value] or list(sources.DEFAULT_WORDS)
    missing = [f for f in files if not f.is_file()]
    if (value and missing) or len(missing) == len(files):
        raise click.BadParameter(f"no word list at {', '.join(printable(str(f)) for f in missing)}; pass --words FILE "
                                 "(one word per line; repeatable), or --words none for the built-in list "
                                 "(make fonts installs /usr/share/dict/words)", param_hint="--words")
    os.environ[sources.WORDS_ENV] = os.pathsep.join(str(f) for f in files if f.is_file())
    return value


_synth_sources = [
    click.option("--backgrounds", callback=_set_backgrounds, expose_value=False, is_eager=True,
                 help="folder of text-free photos behind synthetic text, or 'none' "
                      "(default: ../shared/backgrounds beside the checkout)"),
    click.option("--words", multiple=True, callback=_set_words, expose_value=False, is_eager=True,
                 help="word list for synthetic text (repeatable), or 'none' for the built-in list "
                      "(default: ../shared/synth/lexicon-90k.txt and /usr/share/dict/words)"),
]


_synth_options = [
    click.option("-n", "--count", "n", type=click.IntRange(min=1), required=True, help="number of samples"),
    click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
                 help="rendering processes (0: render in this process)"),
]


def _with_options(options):
    def wrap(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return wrap


@synth.command("words")
@_with_options(_synth_options)
@_with_options(_synth_sources)
@click.option("--format", "fmt", type=click.Choice(["shards", "folder"]), default="shards", show_default=True,
              help="shards: a corpus for train rec --corpus (OUT/shard-*.npz + OUT/manifest.json; a rerun keeps "
                   "the finished shards); folder: a recognition set (OUT/images/*.jpg + OUT/labels.tsv)")
@click.option("--shard-size", type=click.IntRange(min=1), default=4096, show_default=True, help="crops per shard")
def synth_words(n, out, seed, workers, fmt, shard_size):
    """Word crops for the recogniser: a sharded corpus, or a folder of crops."""
    if fmt == "folder":
        _run_synth("words", n, out, seed, workers)
        return
    from rich.progress import Progress

    from .data.shards import CorpusError
    from .synth.corpus_writer import write_corpus

    try:
        with Progress() as progress:
            task = progress.add_task("rendering words", total=n)
            report = write_corpus(out, n, seed=seed, workers=workers, shard_size=shard_size,
                                  progress=lambda k: progress.advance(task, k))
    except CorpusError as err:
        raise click.ClickException(printable(str(err))) from None
    except OSError as err:
        raise click.ClickException(f"cannot write the corpus: {printable(str(err))}") from None
    kept = f"; {report.kept} finished shards kept" if report.kept else ""
    click.echo(f"wrote {n} words in {report.shards} shards to {printable(str(out))} "
               f"({report.rendered} rendered{kept})")


@synth.command("scenes")
@_with_options(_synth_options)
@_with_options(_synth_sources)
def synth_scenes(n, out, seed, workers):
    """Scenes for the detector: OUT/images, OUT/gt (words), OUT/gt_lines (lines)."""
    _run_synth("scenes", n, out, seed, workers)


@synth.command("preview")
@_with_options(_synth_sources)
@click.argument("kind", type=click.Choice(["words", "scenes"]))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="PNG file to write")
@click.option("-n", "--count", "n", type=click.IntRange(min=1), help="samples (default 64 words or 8 scenes)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--real", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="words: put N crops of this recognition set (labels.tsv) beside N synthetic ones; repeatable")
def synth_preview(kind, out, n, seed, real):
    """A contact sheet of synthetic samples (scenes with their word and line boxes drawn)."""
    import cv2

    from .data.formats import FormatError
    from .imageio import ImageLoadError
    from .synth.preview import beside_real_sheet, scene_sheet, word_sheet

    if real and kind != "words":
        raise click.UsageError("--real goes with 'words'")
    try:
        if real:
            sheet = beside_real_sheet(real, n or 24, seed)
        else:
            sheet = word_sheet(n or 64, seed) if kind == "words" else scene_sheet(n or 8, seed)
    except (FormatError, ImageLoadError) as err:
        raise click.ClickException(printable(str(err))) from None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise click.ClickException(f"{out}: could not write the image")
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------------- train
@main.group()
def data():
    """Prepare training data from the sets the project reads."""


@data.command("crops")
@click.argument("det_sets", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="recognition set to write (OUT/images, OUT/labels.tsv)")
@click.option("--boxes", type=click.Choice(["truth", "detector"]), default="truth", show_default=True,
              help="cut at the ground-truth regions, or at the boxes the pipeline's detector finds that match "
                   "a word (IoU > 0.5), labelled with that word")
@click.option("--weights-det", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="with --boxes detector: detector model file (default: shipped)")
def data_crops(det_sets, out, boxes, weights_det):
    """Cut the transcribed words of detection sets (images/ + gt/) into a recognition set."""
    from .data.formats import FormatError, read_det_set
    from .data.word_crops import write_word_crops

    try:
        samples = [s for folder in det_sets for s in read_det_set(folder)]
    except FormatError as err:
        raise click.ClickException(str(err)) from None
    finder = _detector_boxes(weights_det) if boxes == "detector" else None
    from rich.console import Console
    from rich.progress import track

    report = write_word_crops(track(samples, description="cutting words", console=Console(stderr=True)), out,
                              boxes=finder)
    for reason in report.unreadable_photos:
        click.echo(f"error: {reason}", err=True)
    if finder is None:
        click.echo(f"{len(report.samples)} word crops from {len(samples)} photos in {out} "
                   f"({report.skipped_regions} regions too thin to read)")
    else:
        click.echo(f"{len(report.samples)} word crops at detector boxes from {len(samples)} photos in {out} "
                   f"({report.skipped_regions} words without a crop; {report.unmatched_boxes} boxes on no word, "
                   f"{report.crowded_boxes} holding more than their word)")


def _detector_boxes(weights_det):
    """The boxes the pipeline reads in a photo (``Reader.boxes_to_read``), with its detector loaded
    now: a model file that cannot be loaded is one line, exit 1."""
    from .reader import Reader

    reader = Reader(detector_weights=weights_det)
    try:
        _ = reader.detector
    except (OSError, ValueError) as err:
        raise click.ClickException(f"cannot load the detector: {printable(str(err))}") from None
    return reader.boxes_to_read


@main.group()
def train():
    """Train the recogniser, the detector, the word splitter or the language prior."""


@train.command("rec")
@_with_options(_synth_sources)
@click.option("-o", "--out", default="runs/rec", show_default=True, help="run folder (checkpoints, log.jsonl)")
@click.option("--steps", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--real", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="real crop folder (labels.tsv); repeatable")
@click.option("--real-ratio", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="fraction of samples drawn from --real folders")
@click.option("--corpus", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="pre-rendered word corpus (scenetext synth words) to read synthetic samples from; repeatable")
@click.option("--corpus-ratio", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="with --corpus: share of the synthetic samples read from it (the rest are rendered)")
@click.option("--val", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="folder to report accuracy on during training; repeatable")
@click.option("--val-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--val-limit", type=click.IntRange(min=1), default=None, help="crops per --val folder")
@click.option("--variant", type=click.Choice(["small", "medium", "fast", "large"]),
              help="model size (default: the --init file's, else small); smaller than the --init file's: "
                   "starts from its most important channels")
@click.option("--charset", "charset_file", type=click.Path(exists=True, dir_okay=False),
              help="file of characters (default: digits, Latin letters, punctuation, space)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--init", type=click.Path(exists=True, dir_okay=False), help="start from these weights")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False),
              help="also learn this trained model's per-frame outputs (distillation)")
@click.option("--distill", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="weight of the distillation loss next to CTC")
@click.option("--no-resume", is_flag=True, help="ignore OUT/last.pt and start again")
@click.option("--stop-at", type=click.IntRange(min=1), help="checkpoint and stop at this step (resume later)")
@click.option("--no-orient-tall", is_flag=True,
              help="keep tall real crops as they are (default with --init: turn each word that runs up or "
                   "down upright, in the orientation the --init weights find its label most likely)")
def train_rec(out, steps, batch_size, lr, real, real_ratio, corpus, corpus_ratio, val, val_every, val_limit, variant,
              charset_file, seed, workers, threads, checkpoint_minutes, init, teacher, distill, no_resume, stop_at,
              no_orient_tall):
    """Train the CRNN recogniser on synthetic words mixed with real crops."""
    from .data.shards import CorpusError
    from .train.recognizer import RecTrainConfig
    from .train.recognizer import train as run

    try:
        run(RecTrainConfig(out=out, steps=steps, batch_size=batch_size, lr=lr, real=list(real), real_ratio=real_ratio,
                           corpus=list(corpus), corpus_ratio=corpus_ratio, val=list(val), val_every=val_every,
                           val_limit=val_limit, variant=variant, charset_file=charset_file, seed=seed,
                           workers=workers, threads=threads, checkpoint_minutes=checkpoint_minutes, init=init,
                           teacher=teacher, distill=distill, resume=not no_resume, stop_at=stop_at,
                           orient_tall=not no_orient_tall))
    except CorpusError as err:
        raise click.ClickException(printable(str(err))) from None


@train.command("prior")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="prior file to write (.npz); the shipped one is scenetext/models/prior-en.npz")
def train_prior(out):
    """Build the English language prior from wordfreq's frequencies (word table and character
    n-gram model) and write it as plain arrays; then `scenetext models --refresh`."""
    from .recognition.lm import build_english_prior, wordfreq_source

    prior = build_english_prior()
    try:
        prior.save(out, source=wordfreq_source())
    except OSError as err:
        raise click.ClickException(f"cannot write {printable(str(out))}: {err.strerror or err}") from None
    click.echo(f"{printable(str(out))}: {len(prior.frequencies)} words, n-gram order {prior.ngram.order}", err=True)


@main.command("finetune")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="new folder for the models (manifest.json), report.md and curve.png")
@click.option("--minutes", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="time budget of the whole run, scoring included")
@click.option("--models", type=click.Choice(["rec", "det", "both"]),
              help="models to fine-tune (default: both for photos, rec for crops)")
@click.option("--init-rec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="recogniser to start from (default: shipped); its variant is kept")
@click.option("--init-det", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="detector to start from (default: shipped)")
@click.option("--mix", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="crop set kept in the recogniser's mix, so it still reads that kind of text; repeatable")
@click.option("--max-forgetting", type=click.FloatRange(min=0, max=1), default=0.01, show_default=True,
              help="largest drop in word accuracy allowed on held-out crops of the --mix sets (else on "
                   "synthetic words)")
@click.option("--distill", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="weight of the starting recogniser's outputs as targets on the --mix and synthetic samples, "
                   "so it keeps reading them as before; 0: off")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="processes preparing training samples")
def finetune(data, out, minutes, models, init_rec, init_det, mix, max_forgetting, distill, seed, threads, workers):
    """Fine-tune the models on your own labelled data, with a before/after report.

    DATA: crop sets (a folder with labels.tsv, labels.txt or gt.txt, or a label file 'image<TAB>text')
    and photo sets (an ICDAR folder images/ + gt/, or a PaddleOCR detection label file). A part is
    held out to score the models before and after; the words of photos are cut into crops for the
    recogniser. OUT is a model folder: 'scenetext run --models OUT' reads with it.
    """
    from .train.finetune import DataError, FinetuneConfig, RichProgress
    from .train.finetune import finetune as run_finetune

    cfg = FinetuneConfig(data=[str(p) for p in data], out=str(out), minutes=minutes, models=models,
                         init_rec=str(init_rec) if init_rec else None, init_det=str(init_det) if init_det else None,
                         mix=list(mix), max_forgetting=max_forgetting, distill=distill, seed=seed, threads=threads,
                         workers=workers)
    progress = RichProgress()
    try:
        report = run_finetune(cfg, progress)
    except DataError as err:
        raise click.ClickException(printable(str(err))) from None
    finally:
        progress.stop()
    from .train.finetune import figures_line

    click.echo(f"before: {figures_line(report.before)}")
    click.echo(f"after:  {figures_line(report.after)}")
    click.echo(f"wrote {printable(str(out))}/ (models, manifest.json, report.md, curve.png) in "
               f"{report.seconds / 60:.1f} min")


# --------------------------------------------------------------------------------- eval
@main.group("eval")
def eval_():
    """Score shipped or given weights with the standard benchmark protocols."""


EVAL_THREADS = click.option(
    "--threads", type=click.IntRange(min=1),
    help="torch threads for the models (default: torch's own, one per core; 1 beside a training run on the same cores)")


def _set_eval_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@eval_.command("rec")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="model file (default: shipped)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write the figures as JSON")
@click.option("--errors", type=click.Path(dir_okay=False), help="write misreads (image, truth, prediction) as TSV")
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False), help="word list for constrained decoding")
@click.option("--lm/--no-lm", default=None, help="prefix beam search re-ranked by English word frequencies "
              "(default, as the Reader reads; off with --lexicon); --no-lm: --decoder alone")
@click.option("--limit", type=click.IntRange(min=1), help="first N crops of each folder")
@EVAL_THREADS
def eval_rec(folders, weights, json_out, errors, decoder, lexicon, lm, limit, threads):
    """Word accuracy (standard protocol), case-sensitive accuracy, 1-NED and speed per folder."""
    from .recognition.beam import lm_decoder
    from .recognition.decode import Lexicon
    from .recognition.evaluate import evaluate_folder
    from .recognition.predictor import Recognizer

    _set_eval_threads(threads)
    if lm and lexicon:
        raise click.UsageError("--lm and --lexicon do not go together")
    try:
        prior = lm_decoder("en" if lm is None and not lexicon else lm or None)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    rec = Recognizer.load(weights, decoder=decoder, lexicon=Lexicon.from_file(lexicon) if lexicon else None, lm=prior)
    results = {}
    click.echo(f"{'set':<18}{'n':>6}{'accuracy':>10}{'acc(case)':>11}{'1-NED':>8}{'crops/s':>9}")
    all_errors = []
    for folder in folders:
        r = evaluate_folder(rec, folder, limit)
        d = results[Path(folder).name] = r.to_dict()
        click.echo(f"{r.name:<18}{d['n']:>6}{d['accuracy']:>10.4f}{d['accuracy_case_sensitive']:>11.4f}"
                   f"{d['one_minus_ned']:>8.4f}{d['crops_per_second']:>9.0f}")
        all_errors.extend(r.errors)
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    if errors:
        Path(errors).write_text("".join(f"{a}\t{b}\t{c}\n" for a, b, c in all_errors))


@eval_.command("e2e")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--weights-det", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="detector model file (default: shipped)")
@click.option("--weights-rec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="recogniser model file (default: shipped)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="write the figures as JSON")
@click.option("--limit", type=click.IntRange(min=1), help="first N images (sorted by name)")
@click.option("--level", type=click.Choice(["line", "word"]), default="word", show_default=True,
              help="detector level; words are scored either way (lines are split into words)")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.3, show_default=True)
@click.option("--zoom", type=click.IntRange(min=64), help=ZOOM_HELP)
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), help=BACKEND_HELP)
@EVAL_THREADS
def eval_e2e(folder, weights_det, weights_rec, json_out, limit, level, min_confidence, zoom, backend, threads):
    """ICDAR 2015 end-to-end scores of the whole pipeline on a detection set (images/ + gt/).

    Word polygons are matched to the ground truth by the IoU protocol (``###`` regions ignored);
    a match is correct when the texts agree (case-insensitive, the ground truth may drop one
    leading/trailing punctuation mark). Prints and writes precision, recall, hmean,
    e2e_precision, e2e_recall, e2e_hmean, n_images and ms_per_image.
    """
    from rich.console import Console

    from .data.formats import FormatError, read_det_set
    from .evaluation.e2e import IGNORE_TEXT, evaluate_e2e
    from .imageio import ImageLoadError, atomic_write_text

    try:
        samples = read_det_set(folder)[:limit]
    except FormatError as err:
        raise click.ClickException(str(err)) from None
    _set_eval_threads(threads)
    reader = _load_reader(weights_det, weights_rec, None, min_confidence, None, level, zoom, backend=backend)
    start = time.perf_counter()
    pages = []
    with _progress(Console(stderr=True), len(samples), hidden=False) as advance:
        try:
            for page in reader.read_many(s.image for s in samples):
                pages.append(page)
                advance()
        except ImageLoadError as err:
            raise click.ClickException(str(err)) from None
    seconds = time.perf_counter() - start
    score = evaluate_e2e(
        [[r.points for r in s.regions] for s in samples],
        [[IGNORE_TEXT if r.ignore else r.text for r in s.regions] for s in samples],
        [[w.polygon for w in p.words] for p in pages],
        [[w.text for w in p.words] for p in pages],
    )
    result = {**score.to_dict(), "n_images": len(samples),
              "ms_per_image": round(1000 * seconds / max(len(samples), 1), 1)}
    click.echo(f"{'':<10}{'precision':>10}{'recall':>10}{'hmean':>10}")
    for name, prefix in (("detection", ""), ("end2end", "e2e_")):
        click.echo(f"{name:<10}" + "".join(f"{result[prefix + k]:>10.4f}" for k in ("precision", "recall", "hmean")))
    click.echo(f"{len(samples)} images, {result['ms_per_image']:.0f} ms per image")
    if json_out:
        atomic_write_text(json_out, json.dumps(result, indent=2) + "\n")


@train.command("det")
@_with_options(_synth_sources)
@click.option("-o", "--out", default="runs/det", show_default=True, help="run folder (checkpoints, log.jsonl)")
@click.option("--steps", type=click.IntRange(min=1), default=60_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--real", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="real detection set (images/ + gt/); repeatable")
@click.option("--real-ratio", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="fraction of images drawn from --real sets (the rest are synthetic scenes)")
@click.option("--val", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="set to report on during training; repeatable")
@click.option("--val-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--val-limit", type=click.IntRange(min=1), default=100, show_default=True, help="photos per --val set")
@click.option("--variant", type=click.Choice(["small", "lite", "vgg16"]), default="small", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--init", type=click.Path(exists=True, dir_okay=False),
              help="start from these weights (of another variant: the layers the two share)")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False),
              help="also learn this trained detector's outputs on the same images (distillation)")
@click.option("--distill", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="weight of the distillation loss beside the detection loss")
@click.option("--hint", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="with --teacher: weight of a loss that also matches two of its feature maps (stride 8 and "
                   "the window conv's), which teaches a student's own layers fast")
@click.option("--no-resume", is_flag=True, help="ignore OUT/last.pt and start again")
@click.option("--stop-at", type=click.IntRange(min=1), help="checkpoint and stop at this step (resume later)")
@click.option("--short-side", type=(click.IntRange(min=32), click.IntRange(min=32)), default=(400, 800),
              show_default=True, help="random short side (pixels) training images are scaled to, MIN MAX")
@click.option("--hard-negatives", type=click.IntRange(min=0), default=0, show_default=True,
              help="per image, also train on this many hardest background anchors (0: off)")
@click.option("--paste", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="word crop folder (labels.tsv) whose crops are pasted into background photos as extra "
                   "synthetic scenes of small photographed text; repeatable")
@click.option("--paste-ratio", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="share of the synthetic scenes made of --paste crops")
@click.option("--paste-margin", type=(click.FloatRange(0, 2), click.FloatRange(0, 2)), default=(0.0, 0.0),
              show_default=True,
              help="seamless pasting: each pasted row fades into the scene over a margin of its own edge pixels "
                   "drawn from MIN..MAX row heights, so no patch edge marks the word (0 0: pasted as rectangles)")
def train_det(out, steps, batch_size, lr, real, real_ratio, val, val_every, val_limit, variant, seed, workers,
              threads, checkpoint_minutes, init, teacher, distill, hint, no_resume, stop_at, short_side,
              hard_negatives, paste, paste_ratio, paste_margin):
    """Train the CTPN detector on synthetic scenes mixed with real detection sets."""
    from .train.detector import DetTrainConfig
    from .train.detector import train as run_training

    run_training(DetTrainConfig(
        out=out, steps=steps, batch_size=batch_size, lr=lr, real=list(real), real_ratio=real_ratio, val=list(val),
        val_every=val_every, val_limit=val_limit, variant=variant, seed=seed, workers=workers, threads=threads,
        checkpoint_minutes=checkpoint_minutes, init=init, teacher=teacher, distill=distill, hint=hint,
        resume=not no_resume, stop_at=stop_at, short_side=tuple(sorted(short_side)), hard_negatives=hard_negatives,
        paste=list(paste), paste_ratio=paste_ratio, paste_margin=tuple(sorted(paste_margin))))


@train.command("split")
@_with_options(_synth_sources)
@click.option("-o", "--out", default="runs/split", show_default=True, help="run folder (checkpoints, log.jsonl)")
@click.option("--steps", type=click.IntRange(min=1), default=4000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--word-sets", "word_sets", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="detection set with word-level ground truth (repeatable; --words is the synthetic lines' word list)")
@click.option("--negatives", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="detection set with line-level ground truth: only boxes off its lines are used (repeatable)")
@click.option("--paste", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="word crop folder (labels.tsv) pasted into scenes (repeatable)")
@click.option("--paste-scenes", type=click.IntRange(min=0), default=300, show_default=True)
@click.option("--font-scenes", type=click.IntRange(min=0), default=300, show_default=True)
@click.option("--detector", type=click.Path(exists=True, dir_okay=False), help="detector whose boxes are cropped")
@click.option("--real-ratio", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="share of detector crops among the samples (the rest are synthetic lines)")
@click.option("--init", type=click.Path(exists=True, dir_okay=False),
              help="CRNN file (all but its output layer) or word-splitter file (all of it) to start the network from")
@click.option("--variant", type=click.Choice(["small", "medium", "fast"]), default="fast", show_default=True)
@click.option("--val-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=4.0, show_default=True)
@click.option("--no-resume", is_flag=True, help="ignore OUT/last.pt and start again")
@click.option("--stop-at", type=click.IntRange(min=1), help="checkpoint and stop at this step (resume later)")
def train_split(out, steps, batch_size, lr, word_sets, negatives, paste, paste_scenes, font_scenes, detector, real_ratio,
                init, variant, val_every, seed, workers, threads, checkpoint_minutes, no_resume, stop_at):
    """Train the word splitter that cuts detected boxes into words (detector level="word")."""
    from .train.splitter import SplitTrainConfig
    from .train.splitter import train as run_training

    run_training(SplitTrainConfig(
        out=out, steps=steps, batch_size=batch_size, lr=lr, words=list(word_sets), negatives=list(negatives),
        paste=list(paste), paste_scenes=paste_scenes, font_scenes=font_scenes, detector=detector,
        real_ratio=real_ratio, init=init, variant=variant, val_every=val_every, seed=seed, workers=workers,
        threads=threads, checkpoint_minutes=checkpoint_minutes, resume=not no_resume, stop_at=stop_at))


@eval_.command("det")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="model file (default: shipped)")
@click.option("--protocol", type=click.Choice(["iou", "deteval"]), default="iou", show_default=True,
              help="ICDAR 2015 IoU matching, or ICDAR 2013 DetEval (for line output against word boxes)")
@click.option("--level", type=click.Choice(["line", "word"]), default="line", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="first N images (sorted by name)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write the figures as JSON")
@click.option("--word-split", default="auto", show_default=True, metavar="auto|ink|none|FILE",
              help="how boxes are cut into words: the shipped word splitter (auto; the blank-column split when it "
                   "is missing), the blank-column split (ink), proposal gaps only (none), or a word-splitter file")
@click.option("--zoom", type=click.IntRange(min=64), help=ZOOM_HELP)
@EVAL_THREADS
def eval_det(folder, weights, protocol, level, limit, json_out, word_split, zoom, threads):
    """Detection precision, recall and hmean on a set (images/ + gt/), ``###`` regions ignored."""
    from .detection.evaluate import evaluate_folder
    from .detection.predictor import Detector, Zoom, word_split_from
    from .imageio import atomic_write_text

    _set_eval_threads(threads)
    try:
        splitter = word_split_from(word_split)
    except (FileNotFoundError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--word-split") from None
    options = {} if zoom is None else {"zoom": Zoom(zoom)}
    r = evaluate_folder(Detector.load(weights, word_split=splitter, **options), folder, protocol=protocol, level=level,
                        limit=limit)
    click.echo(f"{'protocol':<10}{'level':<7}{'images':>7}{'precision':>11}{'recall':>9}{'hmean':>9}{'ms/image':>10}")
    click.echo(f"{protocol:<10}{level:<7}{r['n_images']:>7}{r['precision']:>11.4f}{r['recall']:>9.4f}"
               f"{r['hmean']:>9.4f}{r['ms_per_image']:>10.0f}")
    if json_out:
        keys = ("precision", "recall", "hmean", "n_images", "ms_per_image")
        atomic_write_text(json_out, json.dumps({k: r[k] for k in keys}, indent=2) + "\n")


@main.command("export")
@click.argument("checkpoint_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.argument("out", required=False, type=click.Path(dir_okay=False))
@click.option("--onnx", "onnx_dir", type=click.Path(file_okay=False, path_type=Path),
              help="instead: write the shipped detector, word splitter and recogniser as ONNX into this folder "
                   "(for --backend onnxruntime --onnx-dir)")
@click.option("--fp32", is_flag=True, help="keep fp32 weights (default: fp16, half the size)")
@click.option("--average", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="write the mean of CHECKPOINT_FILE's weights and this file's (same kind and configuration, "
                   "e.g. runs continued from one another); repeatable")
@click.option("--score-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="detector only: the proposal score threshold to use with these weights (default 0.7)")
@click.option("--line-min-score", type=click.FloatRange(0, 1),
              help="detector only: lines whose mean (min-max normalised) proposal score is lower are dropped "
                   "(default 0.7)")
@click.option("--read-line-min-score", type=click.FloatRange(0, 1),
              help="detector only: --line-min-score when a recogniser reads the lines (scenetext run, eval e2e, "
                   "the Reader), whose confidence drops the false lines a lower score lets through (default: "
                   "--line-min-score)")
@click.option("--scale", "scales", multiple=True, type=click.IntRange(min=32),
              help="detector only: short side(s) to detect at with these weights (default 720); repeatable")
@click.option("--max-side", type=click.IntRange(min=32),
              help="detector only: cap on the long side of the image the detector sees (default 1280)")
@click.option("--zoom", type=click.IntRange(min=32),
              help="detector only: short side of a closer look at the weak spots of the first scale, for small "
                   "text (default: none)")
@click.option("--zoom-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="detector only: best anchor score above which a cell is looked at closer (with --zoom; "
                   "default 0.2)")
@click.option("--line-margin", type=click.FloatRange(0, 2),
              help="detector only: line boxes are grown by this share of their height above and below (default 0)")
@click.option("--line-builder", type=click.Choice(["columns", "oriented"]),
              help="detector only: how proposals become lines (default columns)")
@click.option("--split-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="word splitter only: a frame is inside a word at this probability or more (default 0.4)")
def export(checkpoint_file, out, onnx_dir, fp32, average, score_threshold, line_min_score, read_line_min_score,
           scales, max_side, zoom, zoom_threshold, line_margin, line_builder, split_threshold):
    """Strip the training state from a checkpoint and write a model file.

    The settings chosen for a model's weights travel with them: e.g.
    `scenetext export runs/det/best.pt runs/ctpn.pt --score-threshold 0.5 --line-min-score 0.5 --scale 900
    --max-side 1600 --line-margin 0.2`. To ship a file, write it into scenetext/models/ and run
    `scenetext models --refresh` (the manifest's sizes and hashes).

    `scenetext export --onnx DIR` writes the shipped networks as ONNX (dynamic batch and sizes)
    with a manifest naming the weights they came from.
    """
    if onnx_dir is not None:
        if checkpoint_file or out or average:
            raise click.UsageError("--onnx takes no CHECKPOINT_FILE, OUT or --average (it exports the shipped models)")
        from .runtime.export import export_onnx

        for path in export_onnx(onnx_dir):
            click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    if not (checkpoint_file and out):
        raise click.UsageError("give CHECKPOINT_FILE and OUT, or --onnx DIR")
    from . import checkpoint

    settings = {"score_threshold": score_threshold, "line_min_score": line_min_score,
                "read_line_min_score": read_line_min_score, "scales": list(scales) or None,
                "max_side": max_side, "line_margin": line_margin, "line_builder": line_builder,
                "threshold": split_threshold}
    if zoom_threshold is not None and zoom is None:
        raise click.UsageError("--zoom-threshold needs --zoom")
    if zoom is not None:
        from .detection.predictor import Zoom

        settings["zoom"] = asdict(Zoom(zoom) if zoom_threshold is None else Zoom(zoom, zoom_threshold))
    settings = {k: v for k, v in settings.items() if v is not None} or None
    try:
        path = checkpoint.export_weights(checkpoint_file, out, half=not fp32, settings=settings, average=average)
    except checkpoint.ModelFileError as exc:
        raise click.ClickException(printable(str(exc))) from None
    except checkpoint.UnknownSettingError as exc:
        raise click.UsageError(f"{exc} (--score-threshold, --line-min-score, --read-line-min-score, --scale, "
                               "--max-side, --zoom, --line-margin and --line-builder are for detector checkpoints, "
                               "--split-threshold for word splitters)") from exc
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _refresh_shipped_onnx() -> None:
    """Write the shipped models' ONNX export again (it must come from the shipped files), or say
    why it cannot be (the export needs the ``onnx`` package)."""
    import importlib.util

    from .runtime.folder import REFRESH_COMMAND, shipped_onnx_dir

    if importlib.util.find_spec("onnx") is None:
        click.echo(f"warning: the ONNX export in {printable(str(shipped_onnx_dir()))} was not written again (needs "
                   f"pip install 'scenetext[onnx]'); run '{REFRESH_COMMAND}'", err=True)
        return
    from .runtime.export import export_onnx

    for path in export_onnx(shipped_onnx_dir()):
        click.echo(f"wrote {printable(str(path))}", err=True)


@main.command("models")
@click.option("--folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a model folder with a manifest.json (default: the models shipped in the package)")
@click.option("--check", is_flag=True, help="also verify every file's size and sha256 (exit 1 on a mismatch)")
@click.option("--json", "as_json", is_flag=True, help="print the manifest entries as JSON")
@click.option("--refresh", is_flag=True,
              help="rewrite the folder's manifest from its model files (sizes, hashes, settings; figures kept); "
                   "for the shipped models, also their ONNX export (models/onnx/)")
def models(folder, check, as_json, refresh):
    """List the models of a folder: name, role, size, figures (from its manifest)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from . import shipped
    from .text import printable

    try:
        entries = shipped.refresh_manifest(folder) if refresh else shipped.manifest(folder)
    except (shipped.ManifestError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    if refresh and folder is None:
        _refresh_shipped_onnx()
    problems = []
    if check:
        for entry in entries:
            try:
                shipped.verify(Path(folder) if folder else shipped.models_dir(), entry)
            except shipped.ManifestError as err:
                problems.append(str(err))
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
    else:
        table = Table(title=f"models in {printable(str(folder or shipped.models_dir()))}")
        for column in ("name", "role", "size", "figures", "description"):
            table.add_column(column, overflow="fold")
        for e in entries:
            figures = ", ".join(f"{k} {v}" for k, v in e.figures.items())
            table.add_row(printable(e.name), e.role, f"{e.size / 1e6:.1f} MB", printable(figures),
                          printable(e.description))
        Console().print(table)
    for problem in problems:
        click.echo(f"error: {printable(problem)}", err=True)
    if check and not problems:
        click.echo(f"{len(entries)} files match their manifest", err=True)
    click.get_current_context().exit(1 if problems else 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
