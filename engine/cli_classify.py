"""`classify`: the top classes of image files and folders, as text or JSON lines.

torch is imported only when the command runs, so `--help` answers at once.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from engine.cli_common import (
    EXIT_BUG,
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    StderrReporter,
    add_model_arguments,
    cancel_on_ctrl_c,
    exit_status,
    load_classifier,
    model_spec_from_args,
    positive_int,
)
from engine.errors import UserFacingError
from engine.events import CancelToken

if TYPE_CHECKING:
    from engine.results import ImageResult

# Copies of engine.predict's defaults: that module imports torch, which --help must not wait for.
# tests/test_cli.py checks that the copies agree.
DEFAULT_TOPK = 5
DEFAULT_BATCH = 8
SUMMARY = "Classify images and print the top classes of each."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="image files, or folders (searched recursively)")
    add_model_arguments(parser)
    add("--topk", type=positive_int, default=DEFAULT_TOPK, metavar="K", help="classes per image (default: 5)")
    add("--batch-size", type=positive_int, default=DEFAULT_BATCH, metavar="N", help="images per batch (default: 8)")
    add("--json", action="store_true", help="print one JSON object per image on stdout, nothing else")


def run(args: argparse.Namespace) -> int:
    from engine.predict import expand_paths

    spec = model_spec_from_args(args.model, args.weights, args.classes, args.prompt)
    reporter = StderrReporter(sys.stderr)
    cancel = CancelToken()
    with cancel_on_ctrl_c(cancel):
        paths = expand_paths(args.paths, cancel)
        if not paths:
            raise UserFacingError(f"No image files in {', '.join(args.paths)}.", "Give image files or folders of them.")
        classifier = load_classifier(spec, args, reporter, cancel)
        started = time.perf_counter()
        show = _print_json if args.json else _print_human
        failed = 0
        for result in classifier.classify_stream(paths, args.topk, args.batch_size, reporter, cancel):
            show(result)
            failed += result.error is not None
        cancel.check()  # a Ctrl+C during the last batch still means "stopped by the user"
    seconds = time.perf_counter() - started
    summary = f"{len(paths) - failed:,} of {len(paths):,} images classified in {seconds:.1f} s"
    if seconds >= 2:  # sooner, a pace says little
        summary += f" ({len(paths) / seconds:.0f} images/s)"
    reporter.line(f"{summary}; {failed} could not be read." if failed else f"{summary}.")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _print_human(result: ImageResult) -> None:
    if result.error is not None:
        _print_failure(result)
        return
    lines = [f"{result.path}  ({result.ms:.1f} ms)"]
    lines += [f"{top.prob * 100:6.1f} %  {top.label}" for top in result.top]
    print("\n".join(lines), flush=True)


def _print_json(result: ImageResult) -> None:
    print(json.dumps(result.as_json()), flush=True)
    if result.error is not None:  # also on the terminal, for someone redirecting stdout to a file
        _print_failure(result)


def _print_failure(result: ImageResult) -> None:
    print(f"{result.path}: {result.error}", file=sys.stderr, flush=True)


EPILOG = """\
--model takes a name from `models` (e.g. resnet50, "ResNet-50"), any timm model name, or a bundle saved
by Classifier Studio. Hub weights are downloaded once into the Hugging Face cache; offline, give a file.

examples:
  %(prog)s photo.jpg
  %(prog)s holiday/ pets/ --topk 3
  %(prog)s holiday/ --json > results.jsonl
  %(prog)s photo.jpg --model resnet50
  %(prog)s photo.jpg --model my_bundle/
  %(prog)s photo.jpg --model resnet50 --weights finetuned.safetensors

""" + exit_status(
    (EXIT_OK, "every image was classified"),
    (EXIT_SOME_FAILED, "some files could not be read (the others' results are printed)"),
    (EXIT_USAGE, "bad arguments, or the model could not be loaded"),
    (EXIT_BUG, "something unexpected went wrong (details are in the log)"),
    (EXIT_CANCELLED, "cancelled with Ctrl+C"),
)
