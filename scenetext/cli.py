"""Command line: a thin click layer over the Python API.

    scenetext synth words -n 100000 -o DIR     synthetic word crops (labels.tsv)
    scenetext synth scenes -n 5000 -o DIR      synthetic scenes (gt/ words, gt_lines/ lines)
    scenetext train rec ...                    train the CRNN recogniser
    scenetext eval rec DIR...                  word accuracy on labelled crop folders
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scenetext")
def main():
    """scenetext: offline scene-text OCR (CTPN detector + CRNN recogniser) for CPUs."""


# --------------------------------------------------------------------------------- synth
@main.group()
def synth():
    """Write synthetic training data to disk."""


def _run_synth(kind: str, n: int, out: Path, seed: int, workers: int):
    from rich.progress import Progress

    from .data import synth_writer

    write = synth_writer.write_words if kind == "words" else synth_writer.write_scenes
    with Progress() as progress:
        task = progress.add_task(f"rendering {kind}", total=n)
        write(out, n, seed=seed, workers=workers, progress=lambda k: progress.advance(task, k))
    click.echo(f"wrote {n} {kind} to {out}")


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
def synth_words(n, out, seed, workers):
    """Word crops for the recogniser: OUT/images/*.jpg and OUT/labels.tsv."""
    _run_synth("words", n, out, seed, workers)


@synth.command("scenes")
@_with_options(_synth_options)
def synth_scenes(n, out, seed, workers):
    """Scenes for the detector: OUT/images, OUT/gt (words), OUT/gt_lines (lines)."""
    _run_synth("scenes", n, out, seed, workers)


@synth.command("preview")
@click.argument("kind", type=click.Choice(["words", "scenes"]))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="PNG file to write")
@click.option("-n", "--count", "n", type=click.IntRange(min=1), help="samples (default 64 words or 8 scenes)")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_preview(kind, out, n, seed):
    """A contact sheet of synthetic samples (scenes with their word and line boxes drawn)."""
    import cv2

    from .data.preview import scene_sheet, word_sheet

    sheet = word_sheet(n or 64, seed) if kind == "words" else scene_sheet(n or 8, seed)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise click.ClickException(f"{out}: could not write the image")
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------------- train
@main.group()
def train():
    """Train the recogniser or the detector (resumable; Ctrl-C writes a checkpoint)."""


@train.command("rec")
@click.option("-o", "--out", default="runs/rec", show_default=True, help="run folder (checkpoints, log.jsonl)")
@click.option("--steps", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--real", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="real crop folder (labels.tsv); repeatable")
@click.option("--real-ratio", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="fraction of samples drawn from --real folders")
@click.option("--val", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="folder to report accuracy on during training; repeatable")
@click.option("--val-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--val-limit", type=click.IntRange(min=1), default=None, help="crops per --val folder")
@click.option("--variant", type=click.Choice(["small", "large"]), default="small", show_default=True)
@click.option("--charset", "charset_file", type=click.Path(exists=True, dir_okay=False),
              help="file of characters (default: digits, Latin letters, punctuation, space)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--init", type=click.Path(exists=True, dir_okay=False), help="start from these weights")
@click.option("--no-resume", is_flag=True, help="ignore OUT/last.pt and start again")
@click.option("--stop-at", type=click.IntRange(min=1), help="checkpoint and stop at this step (resume later)")
def train_rec(out, steps, batch_size, lr, real, real_ratio, val, val_every, val_limit, variant, charset_file, seed,
              workers, threads, checkpoint_minutes, init, no_resume, stop_at):
    """Train the CRNN recogniser on synthetic words mixed with real crops."""
    from .recognition.train import RecTrainConfig
    from .recognition.train import train as run

    run(RecTrainConfig(out=out, steps=steps, batch_size=batch_size, lr=lr, real=list(real), real_ratio=real_ratio,
                       val=list(val), val_every=val_every, val_limit=val_limit, variant=variant,
                       charset_file=charset_file, seed=seed, workers=workers, threads=threads,
                       checkpoint_minutes=checkpoint_minutes, init=init, resume=not no_resume,
                       stop_at=stop_at))


# --------------------------------------------------------------------------------- eval
@main.group("eval")
def eval_():
    """Score shipped or given weights with the standard benchmark protocols."""


@eval_.command("rec")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), help="model file (default: shipped)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write the figures as JSON")
@click.option("--errors", type=click.Path(dir_okay=False), help="write misreads (image, truth, prediction) as TSV")
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False), help="word list for constrained decoding")
@click.option("--limit", type=click.IntRange(min=1), help="first N crops of each folder")
def eval_rec(folders, weights, json_out, errors, decoder, lexicon, limit):
    """Word accuracy (standard protocol), case-sensitive accuracy, 1-NED and speed per folder."""
    import torch

    from .recognition.decode import Lexicon
    from .recognition.evaluate import evaluate_folder
    from .recognition.predictor import Recognizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    rec = Recognizer.load(weights, decoder=decoder, lexicon=Lexicon.from_file(lexicon) if lexicon else None)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
