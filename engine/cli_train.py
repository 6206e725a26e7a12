"""`train`: teach a model the classes of a folder, resumable; and the evaluation tables `evaluate` prints too.

Registered by engine/cli.py; torch loads only when a command runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.catalog import BUILTIN_ARCH, find_entry
from engine.cli_common import (
    DEVICE_CHOICES,
    EXIT_BUG,
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_USAGE,
    StderrReporter,
    cancel_on_ctrl_c,
    exit_status,
    positive_int,
)
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Event, Log, Progress
from engine.training.plan import AUGMENTATIONS, INIT_CHOICES, METHODS, EpochMetrics, StepMetrics, TrainPlan

if TYPE_CHECKING:
    from engine.training.dataset import DatasetScan
    from engine.training.metrics import Evaluation
    from engine.training.run import Run
    from engine.training.trainer import TrainResult

SUMMARY = "Teach a model the classes of a folder of class subfolders; Ctrl+C keeps the run resumable."
DEFAULTS = TrainPlan(data_dir="")
# What may change when a cancelled run resumes: how it runs, not what it learns (a smaller batch after running
# out of GPU memory, another device, where the model goes).
RESUME_CHANGES = ("batch_size", "grad_accumulation", "workers", "device", "output", "export_onnx")
MAX_CONFUSION_CLASSES = 30  # wider than a terminal; the report's confusion.csv and --json hold the rest
RESUME_COMMAND = "python main.py train --resume"
LIVE_INTERVAL_S = 0.1


class _Store(argparse.Action):
    """Stores the value and notes which option the user gave (on resume, only given options are changes)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {**getattr(namespace, "given", {}), self.dest: option_string}


class _Switch(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        namespace.given = {**getattr(namespace, "given", {}), self.dest: option_string}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def option(flag: str, field: str, text: str, **kwargs) -> None:  # one TrainPlan field, its default from there
        default = kwargs.pop("default", getattr(DEFAULTS, field))
        if isinstance(default, bool):
            action, text = _Switch, f"{text} (default: {'on' if default else 'off'})"
        else:
            action, kwargs = _Store, {"metavar": "N", **kwargs}
        parser.add_argument(flag, dest=field, action=action, default=default, help=text, **kwargs)

    parser.add_argument("data_dir", nargs="?", metavar="DATA_DIR",
                        help="a folder of class subfolders (or train/val[/test] folders of them); "
                        "optional with --resume")
    option("--model", "arch", "a catalog or timm model name (default: the built-in EfficientNet-Lite0, works offline)",
           metavar="NAME")
    option("--init", "init", f"start from: {'|'.join(INIT_CHOICES)}|WEIGHTS_FILE|BUNDLE (default: builtin for the "
           "built-in model, else pretrained)", metavar="FROM", default=None)
    option("--method", "method",
           "quick: a new head on frozen features; full: every layer learns (default: %(default)s)",
           choices=tuple(METHODS), metavar=None)
    option("--epochs", "epochs", "epochs (default: 0 = the method's own: quick 30, full 10)", type=_count)
    option("--image-size", "image_size", "training image size (default: 0 = the model's own)", type=_count,
           metavar="PX")
    option("--batch-size", "batch_size", "images per batch; may change on --resume (default: %(default)s)",
           type=positive_int)
    option("--lr", "lr", "learning rate (default: 0 = quick 1e-3, full 1e-4, from scratch 1e-3)", type=_amount,
           metavar="X")
    option("--head-lr-multiplier", "head_lr_multiplier", "full method: the new head learns this many times faster "
           "(default: %(default)s)", type=_amount, metavar="X")
    option("--weight-decay", "weight_decay", "AdamW weight decay (default: %(default)s)", type=_amount, metavar="X")
    option("--warmup-epochs", "warmup_epochs", "linear warm-up before the cosine decay (default: %(default)s)",
           type=_amount, metavar="X")
    option("--label-smoothing", "label_smoothing", "0 … <1 (default: %(default)s)", type=_amount, metavar="X")
    option("--augment", "augmentation", "augmentation preset (default: %(default)s)", choices=AUGMENTATIONS,
           metavar=None)
    option("--eval-every", "eval_every", "evaluate every N epochs (default: %(default)s)", type=positive_int)
    option("--patience", "early_stopping_patience", "stop after N evaluations without improvement; 0 = never "
           "(default: %(default)s)", type=_count)
    option("--accumulate", "grad_accumulation", "batches per optimiser step (default: %(default)s)",
           type=positive_int)
    option("--mixed-precision", "mixed_precision", "fp16/bf16 on CUDA")
    option("--class-weights", "class_weights", "weight the loss by inverse class frequency, for lopsided folders")
    option("--balanced-sampling", "balanced_sampling", "draw every class equally often")
    option("--progressive-unfreeze", "progressive_unfreeze", "full method: the head first, then the later stages, "
           "then everything")
    option("--val-split", "val_fraction", "share of images held out for validation (default: %(default)s)",
           type=float, metavar="F")
    option("--seed", "seed", "random seed (default: %(default)s)", type=_count)
    option("--workers", "workers", "data loader processes; 0 = load in the training thread (default: 0)", type=_count)
    option("--device", "device", "where to train (default: %(default)s)", choices=DEVICE_CHOICES, metavar=None)
    option("--export-onnx", "export_onnx", "also write model.onnx into the bundle, checked against PyTorch")
    option("--out", "output", "where to save the model (default: a new folder in My models)", metavar="BUNDLE")
    option("--name", "name", "the model's name (default: the data folder's)", metavar="NAME")
    add = parser.add_argument
    add("--resume", metavar="RUN_FOLDER", help="carry on with a cancelled or failed run from its last epoch")
    add("--runs", action="store_true", help="list the training runs (resumable ones first) and exit")
    add("--delete-run", metavar="RUN_FOLDER", help="delete a run you will not resume, with its checkpoints, and exit")
    add("--json", action="store_true", help="print one JSON object with the result at the end, nothing else")


def run(args: argparse.Namespace) -> int:
    from engine.training.run import delete_run, list_runs

    if args.runs:
        _print_runs(list_runs(), args.json)
        return EXIT_OK
    if args.delete_run:
        delete_run(args.delete_run)
        print(f"Deleted {args.delete_run}")
        return EXIT_OK
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only the JSON object
    cancel = CancelToken()
    reporter = TrainReporter(sys.stderr, out, cancel)
    with cancel_on_ctrl_c(cancel):
        if args.resume:
            run, changes = _resumed_run(args), _resume_changes(args)
            print(f"Resuming {run.name} after epoch {run.epochs_done} of {run.plan.effective_epochs}: {run.folder}",
                  file=out)
        else:
            run, changes = _new_run(args, reporter, out, cancel), {}
            print(f"Run folder: {run.folder}  (resume with: {RESUME_COMMAND} {_quoted(run.folder)})", file=out)
        result = _train(run, changes, reporter, cancel)
    if result is None:
        return EXIT_CANCELLED
    if args.json:
        print(json.dumps(_result_json(result)))
    else:
        _print_result(result)
    return EXIT_OK


def _new_run(args: argparse.Namespace, reporter: TrainReporter, out: TextIO, cancel: CancelToken) -> Run:
    from engine.catalog import is_known_architecture, suggest_architectures
    from engine.training.base_model import start_spec
    from engine.training.dataset import scan_class_folders
    from engine.training.run import create_run

    if not args.data_dir:
        raise UserFacingError("Name the folder to train on.", "For example: train photos/ (or --resume RUN_FOLDER).")
    entry = find_entry(args.arch)
    arch = entry.arch if entry else args.arch.strip()
    init = args.init or ("builtin" if arch.split(".")[0] == BUILTIN_ARCH.split(".")[0] else "pretrained")
    if init in INIT_CHOICES and not is_known_architecture(arch):  # before any folder is made for the run
        close = suggest_architectures(arch)
        raise UserFacingError(f"There is no model '{arch}'.", (f"Did you mean {', '.join(close)}? " if close else "")
                              + "List them with: python main.py models")
    start_spec(arch, init)  # a built-in/architecture mismatch or a missing weights file, said before any work
    values = {f.name: getattr(args, f.name) for f in fields(TrainPlan) if hasattr(args, f.name)}
    plan = TrainPlan(**{**values, "data_dir": str(Path(args.data_dir).expanduser().resolve()), "arch": arch,
                        "init": init}).validated()
    reporter.show_info = False
    scan = scan_class_folders(plan.data_dir, reporter, cancel)
    reporter.show_info = True
    reporter.clear()
    _print_scan(scan, out)
    for problem in scan.problems:
        reporter.line(f"warning: {problem.message}")
    return create_run(plan, scan)


def _resumed_run(args: argparse.Namespace) -> Run:
    from engine.training.run import open_run

    run = open_run(args.resume)
    if args.data_dir and Path(args.data_dir).expanduser().resolve() != Path(run.plan.data_dir).resolve():
        raise UserFacingError(
            f"The run {run.folder.name} trains on {run.plan.data_dir}, not {args.data_dir}.",
            "Leave out DATA_DIR when resuming, or start a new run on the other folder.",
        )
    return run


def _resume_changes(args: argparse.Namespace) -> dict:
    given = getattr(args, "given", {})
    fixed = ", ".join(option for name, option in given.items() if name not in RESUME_CHANGES)
    if fixed:
        raise UserFacingError(
            f"{fixed} cannot change when a run resumes: the run keeps the settings it started with.",
            f"Resume without {fixed} (only --batch-size, --accumulate, --workers, --device and --out may change), "
            "or start a new run.",
        )
    return {name: getattr(args, name) for name in given}


def _train(run: Run, changes: dict, reporter: TrainReporter, cancel: CancelToken) -> TrainResult | None:
    """The finished result, or None after Ctrl+C (the run keeps its last completed epoch)."""
    from engine.hub import OFFLINE_HINT
    from engine.training.run import open_run
    from engine.training.trainer import train_run

    try:
        return train_run(run.folder, reporter, cancel, **changes)
    except (Cancelled, KeyboardInterrupt):
        done = open_run(run.folder).epochs_done
        kept = f"after {done} of {run.plan.effective_epochs} epochs; the run keeps them" if done else "before epoch 1"
        reporter.line(f"Cancelled {kept}.\nResume with: {RESUME_COMMAND} {_quoted(run.folder)}")
        return None
    except UserFacingError as exc:
        if exc.hint == OFFLINE_HINT:  # the engine's hint names the window; here the fix is an option
            raise UserFacingError(exc.message, "Connect to the internet to download it once, or start from "
                                  "--init builtin, --init scratch or --init WEIGHTS_FILE|BUNDLE.") from exc
        raise


class TrainReporter:
    """Scan and feature progress and a live step line on a terminal's stderr; one line per evaluated epoch on `out`.

    Downloads and warnings go through the StderrReporter the other commands use.
    """

    def __init__(self, stream: TextIO, out: TextIO, cancel: CancelToken | None = None) -> None:
        self.base = StderrReporter(stream)
        self.stream, self.out, self.live, self.cancel = stream, out, self.base.live, cancel
        self.show_info = True  # off while the scan runs: the scan summary says it better
        self._line_open, self._last_live = False, 0.0
        self._progress_seen: set[str] = set()

    def __call__(self, event: Event) -> None:
        if isinstance(event, EpochMetrics):
            self.clear()
            print(format_epoch(event), file=self.out, flush=True)
        elif isinstance(event, StepMetrics):
            self._live(f"epoch {event.epoch}/{event.epochs}  step {event.step}/{event.steps}  loss {event.loss:.3f}  "
                       f"lr {event.lr:.1e}  {event.images_per_second:.0f} img/s  ETA {_duration(event.eta_seconds)}")
        elif isinstance(event, Progress) and event.unit != "bytes":
            of = f"/{event.total}" if event.total else ""
            if self.live:
                self._live(f"{event.what}: {event.done}{of}", force=event.done == event.total)
            elif event.what not in self._progress_seen:
                self._progress_seen.add(event.what)
                self.line(f"{event.what}…")
        elif isinstance(event, Log):
            # Once cancelled, the command's own message says how to resume (the engine's names the window's way).
            if event.level != "info" or (self.show_info and not (self.cancel and self.cancel.cancelled)):
                self.line(event.text if event.level == "info" else f"{event.level}: {event.text}")
        else:
            self.base(event)

    def _live(self, text: str, force: bool = True) -> None:
        now = time.monotonic()
        if self.live and (force or now - self._last_live >= LIVE_INTERVAL_S):  # a terminal redrawn 10 times a second
            self._last_live = now
            self.stream.write(f"\r{text[:119]:<119}")
            self.stream.flush()
            self._line_open = True

    def clear(self) -> None:
        """Blanks the live line, so the next line (on either stream) starts clean."""
        if self._line_open:
            self.stream.write("\r" + " " * 119 + "\r")
            self.stream.flush()
            self._line_open = False

    def line(self, text: str) -> None:
        self.clear()
        self.base.line(text)


def format_epoch(m: EpochMetrics) -> str:
    return (f"epoch {m.epoch}/{m.epochs}  train loss {m.train_loss:.3f} acc {m.train_accuracy:.3f} · "
            f"val loss {m.val_loss:.3f} acc {m.val_accuracy:.3f} (best {m.best_epoch})")


def _print_scan(scan: DatasetScan, out: TextIO) -> None:
    layout = " (train/val/test folders)" if scan.layout == "split" else ""
    print(f"{scan.num_images} images in {len(scan.classes)} classes in {scan.root}{layout}:", file=out)
    rows = [(f"  {s.name}", str(s.images)) for s in scan.summaries]
    print(aligned(rows), file=out)
    if scan.skipped:
        print(f"{scan.skipped} files left out (see the warnings)", file=out)


def _print_result(result: TrainResult) -> None:
    print(f"Model saved: {result.bundle}")
    print(f"Report: {result.report.html}")
    stopped = ", stopped early" if result.stopped_early else ""
    print(f"Validation, best epoch {result.best_epoch} of {result.epochs_run}{stopped}:")
    print_evaluation(result.evaluation)
    if result.test_evaluation is not None:
        print("Test:")
        print_evaluation(result.test_evaluation)


def print_evaluation(evaluation: Evaluation) -> None:
    print(evaluation.summary_line() + f"  ({evaluation.num_images} images)")
    print(format_confusion(evaluation))


def _result_json(result: TrainResult) -> dict:
    return {
        "bundle": str(result.bundle),
        "report": str(result.report.html),
        "run_folder": str(result.run_folder),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 2),
        "evaluation": result.evaluation.to_dict(),
        "test_evaluation": result.test_evaluation.to_dict() if result.test_evaluation else None,
    }


def _print_runs(runs: list[Run], as_json: bool) -> None:
    rows = [(run.name, run.status, f"{run.epochs_done}/{run.plan.effective_epochs}", str(run.folder))
            for run in sorted(runs, key=lambda run: not run.resumable)]  # stable: newest first within each group
    if as_json:
        print(json.dumps([dict(zip(("name", "status", "epochs", "folder"), row)) for row in rows], indent=2))
    elif not rows:
        print("No training runs yet.")
    else:
        print(aligned([("Name", "Status", "Epochs", "Folder"), *rows], left={0, 1, 3}))


def format_confusion(evaluation: Evaluation) -> str:
    """Rows are the true classes, columns what the model predicted: the classes with images or answers."""
    shown = evaluation.seen_only()
    if len(shown.labels) > MAX_CONFUSION_CLASSES:
        return f"(the {len(shown.labels)}-class confusion matrix is too wide to show: see confusion.csv or --json)"
    rows = [(label, *map(str, row)) for label, row in zip(shown.labels, shown.confusion)]
    return "confusion matrix (rows: true class, columns: predicted)\n" + aligned([("", *shown.labels), *rows])


def aligned(rows: list[tuple[str, ...]], left: set[int] = frozenset({0})) -> str:
    """Columns padded to their widest cell: text columns left-aligned, numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    )


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _quoted(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def _non_negative(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {'whole ' if kind is int else ''}number") from None
        if not value >= 0:  # also refuses nan
            raise argparse.ArgumentTypeError("cannot be negative")
        return value

    return parse


_count, _amount = _non_negative(int), _non_negative(float)


EPILOG = """\
Progress goes to stderr; each evaluated epoch, the saved model, its report and the final validation figures go to
stdout. Ctrl+C stops within a batch and keeps every completed epoch: carry on with --resume RUN_FOLDER.
Offline, use the built-in model (the default), --init scratch, or --init WEIGHTS_FILE|BUNDLE.

examples:
  %(prog)s photos/
  %(prog)s photos/ --method full --epochs 15 --augment standard
  %(prog)s photos/ --model resnet50 --init pretrained --method full --batch-size 16 --device cuda
  %(prog)s photos/ --out my_model/ --json > result.json
  %(prog)s --runs
  %(prog)s --delete-run RUN_FOLDER
  %(prog)s --resume RUN_FOLDER --batch-size 8

""" + exit_status(
    (EXIT_OK, "the model was trained and saved"),
    (EXIT_USAGE, "bad arguments or data (the message says what to fix)"),
    (EXIT_BUG, "something unexpected went wrong (details are in the log)"),
    (EXIT_CANCELLED, "cancelled with Ctrl+C (the run can be resumed)"),
)
