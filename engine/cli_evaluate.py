"""`evaluate`: measure a saved model on a folder of labelled images (accuracy, per-class figures, confusions).

Registered by engine/cli.py like `train`, whose progress lines and tables it shares; torch loads only when the command
runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli_common import DEVICE_CHOICES, EXIT_OK, cancel_on_ctrl_c, positive_int
from engine.cli_train import TrainReporter, aligned, format_confusion
from engine.errors import UserFacingError
from engine.events import CancelToken

if TYPE_CHECKING:
    from engine.training.metrics import Evaluation

SUMMARY = "Measure a saved model on a folder of labelled images: accuracy, per-class figures, confusions."
EPILOG = """\
Uses the folder's test (else val) subfolder when it has train/val/test folders, otherwise every image.

examples:
  %(prog)s my_model/ held_out_photos/
  %(prog)s my_model/ held_out_photos/ --json
  %(prog)s my_model/ held_out_photos/ --report line_3_check/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("bundle", metavar="BUNDLE", help="a model bundle saved by Classifier Studio (folder or .safetensors)")
    add("data_dir", metavar="DATA_DIR", help="a folder of class subfolders named like the model's classes")
    add("--device", choices=DEVICE_CHOICES, default="auto", help="where the model runs (default: auto)")
    add("--batch-size", type=positive_int, default=32, metavar="N", help="images per batch (default: 32)")
    add("--json", action="store_true", help="print the evaluation as one JSON object, nothing else")
    add("--report", metavar="DIR", help="also write report.html, metrics.json, per_class.csv and confusion.csv "
        "into DIR (made if needed), the same report training writes")


def run(args: argparse.Namespace) -> int:
    from engine.my_models import describe_my_model
    from engine.training.evaluate import evaluate_bundle
    from engine.training.report import images_used, write_evaluation_report

    if not Path(args.bundle).exists():
        raise UserFacingError(f"There is no model bundle at {args.bundle}.", "Check the path.")
    cancel = CancelToken()
    reporter = TrainReporter(sys.stderr, sys.stderr, cancel)
    with cancel_on_ctrl_c(cancel):
        evaluation, part = evaluate_bundle(args.bundle, args.data_dir, args.device, args.batch_size, reporter, cancel)
    reporter.clear()
    report = None
    if args.report:
        bundle = Path(args.bundle).resolve()  # "." names the folder it is, here and in the report
        described = describe_my_model(bundle)  # named as My models and the window's Evaluate… name it
        name = described.name if described is not None else bundle.name
        report = write_evaluation_report(args.report, evaluation, part, args.data_dir, name, bundle).html
    if args.json:
        print(json.dumps({**evaluation.to_dict(), "images": part, "report": str(report) if report else None}))
        return EXIT_OK
    print(f"{evaluation.num_images} images ({images_used(part, args.data_dir)})")
    print(f"accuracy: {evaluation.accuracy:.3f}")
    print(f"loss: {evaluation.loss:.3f}")
    if evaluation.top5 is not None:
        print(f"top-5: {evaluation.top5:.3f}")
    print(f"macro F1: {evaluation.macro_f1:.3f}")
    print(format_per_class(evaluation))
    print(format_confusion(evaluation))
    if report:
        print(f"report: {report}")
    return EXIT_OK


def format_per_class(evaluation: Evaluation) -> str:
    """The classes with images or answers (a 1000-class model checked on two folders has a few); --json has all."""
    shown = evaluation.seen_only()
    rows = [(c.name, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support)) for c in shown.per_class]
    table = aligned([("class", "precision", "recall", "F1", "support"), *rows])
    if len(shown.labels) < len(evaluation.labels):
        table += f"\n(the {len(shown.labels)} of the model's {len(evaluation.labels)} classes with images or answers)"
    return table
