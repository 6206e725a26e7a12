"""`classify`: the top classes of image files and folders (and pictures at web addresses), as text or JSON lines.

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
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken
from engine.sort_into_folders import UNSURE_FOLDER, FolderSorter, SortOptions, prepare_destination
from engine.web_images import download_image, web_image_urls

if TYPE_CHECKING:
    from engine.results import ImageResult

# Copies of engine.predict's defaults: that module imports torch, which --help must not wait for.
# tests/test_cli.py checks that the copies agree.
DEFAULT_TOPK = 5
DEFAULT_BATCH = 8
SUMMARY = "Classify images and print the top classes of each."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH",
        help="image files, folders (searched recursively), or http(s) addresses of pictures")
    add_model_arguments(parser)
    add("--topk", type=positive_int, default=DEFAULT_TOPK, metavar="K", help="classes per image (default: 5)")
    add("--batch-size", type=positive_int, default=DEFAULT_BATCH, metavar="N", help="images per batch (default: 8)")
    add("--json", action="store_true", help="print one JSON object per image on stdout, nothing else")
    sort = parser.add_argument_group("sorting into folders")
    sort.add_argument(
        "--sort-into", metavar="FOLDER", help="copy each image into FOLDER/<its top-1 class>/ as it is classified"
    )
    sort.add_argument(
        "--min-confidence",
        type=percent,
        metavar="PERCENT",
        help=f"with --sort-into: images whose top-1 confidence is below PERCENT (e.g. 60) go into "
        f"FOLDER/{UNSURE_FOLDER}",
    )
    sort.add_argument("--move", action="store_true", help="with --sort-into: move the images rather than copy them")


def percent(text: str) -> float:
    try:
        value = float(text.rstrip("% "))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be a percentage from 0 to 100")
    if 0 < value < 1:  # 0.6 is far more likely meant as 60 % than as 0.6 %
        raise argparse.ArgumentTypeError(f"is a percentage: give {value * 100:g} for {value * 100:g} %, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from engine.predict import expand_paths

    spec = model_spec_from_args(args.model, args.weights, args.classes, args.prompt)
    urls = [path for path in args.paths if web_image_urls(path)]
    if urls and args.sort_into:
        raise UserFacingError("--sort-into sorts image files, and a web address is not one.",
                              "Save the pictures first, or classify the web addresses without --sort-into.")
    sorter = _sorter_from_args(args)  # before the model loads: a bad folder is said at once
    reporter = StderrReporter(sys.stderr)
    cancel = CancelToken()
    with cancel_on_ctrl_c(cancel):
        paths = expand_paths([path for path in args.paths if path not in urls], cancel)
        if not paths and not urls:
            raise UserFacingError(f"No image files in {', '.join(args.paths)}.", "Give image files or folders of them.")
        classifier = load_classifier(spec, args, reporter, cancel)
        started = time.perf_counter()
        show = _print_json if args.json else _print_human
        failed = 0
        try:
            for result in classifier.classify_stream(paths, args.topk, args.batch_size, reporter, cancel):
                show(result, sorter.sort(result) if sorter else None)
                failed += result.error is not None
            for url in urls:  # after the files: each downloaded into memory, then classified
                result = _classify_web_picture(classifier, url, args.topk, reporter, cancel)
                show(result, None)
                failed += result.error is not None
            cancel.check()  # a Ctrl+C during the last batch still means "stopped by the user"
        except Cancelled:
            if sorter:
                sorter.report.cancelled = True
                _print_sort_summary(sorter, reporter)
            raise
    seconds = time.perf_counter() - started
    total = len(paths) + len(urls)
    took = f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"  # not "0.0 s" for a few small photos
    summary = f"{total - failed:,} of {total:,} images classified in {took}"
    if seconds >= 2:  # sooner, a pace says little
        summary += f" ({total / seconds:.0f} images/s)"
    reporter.line(f"{summary}; {failed} could not be read." if failed else f"{summary}.")
    if sorter:
        _print_sort_summary(sorter, reporter)
        failed += len(sorter.report.failures)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _classify_web_picture(classifier, url: str, topk: int, reporter: StderrReporter, cancel: CancelToken
                          ) -> ImageResult:
    """The picture at `url`, downloaded (with progress on stderr) and classified; a dead link is its error."""
    from engine.results import ImageResult

    try:
        data = download_image(url, cancel, reporter)
    except UserFacingError as exc:
        return ImageResult(url, error=f"{exc.message} {exc.hint}")
    return classifier.classify_encoded(url, data, topk)


def _sorter_from_args(args: argparse.Namespace) -> FolderSorter | None:
    if not args.sort_into:
        for option, given in (("--min-confidence", args.min_confidence is not None), ("--move", args.move)):
            if given:
                raise UserFacingError(
                    f"{option} says how to sort into folders, and no --sort-into FOLDER was given.",
                    "Add --sort-into FOLDER, or leave out " + option + ".",
                )
        return None
    prepare_destination(args.sort_into)
    return FolderSorter(SortOptions(args.sort_into, (args.min_confidence or 0) / 100, args.move))


def _print_sort_summary(sorter: FolderSorter, reporter: StderrReporter) -> None:
    for line in sorter.report.summary():
        reporter.line(line)


def _print_human(result: ImageResult, sorted_to: str | None) -> None:
    if result.error is not None:
        _print_failure(result)
        return
    lines = [f"{result.path}  ({result.ms:.1f} ms)"]
    lines += [f"{top.prob * 100:6.1f} %  {top.label}" for top in result.top]
    if sorted_to:
        lines.append(f"  → {sorted_to}")
    print("\n".join(lines), flush=True)


def _print_json(result: ImageResult, sorted_to: str | None) -> None:
    record = result.as_json()
    if sorted_to:
        record["sorted_to"] = sorted_to
    print(json.dumps(record), flush=True)
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
  %(prog)s https://example.org/cat.jpg
  %(prog)s photo.jpg --model my_bundle/
  %(prog)s photo.jpg --model resnet50 --weights finetuned.safetensors
  %(prog)s holiday/ --sort-into sorted/ --min-confidence 60

--sort-into copies each image under its own name into a folder named after its top-1 class; it never
overwrites a file, and an image already sorted there is skipped, so the same command picks up where a
cancelled or interrupted sort stopped.

""" + exit_status(
    (EXIT_OK, "every image was classified (and sorted)"),
    (EXIT_SOME_FAILED, "some files could not be read or sorted (the others' results are printed)"),
    (EXIT_USAGE, "bad arguments, the model could not be loaded, or the disk filled while sorting"),
    (EXIT_BUG, "something unexpected went wrong (details are in the log)"),
    (EXIT_CANCELLED, "cancelled with Ctrl+C"),
)
