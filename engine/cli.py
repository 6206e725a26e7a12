"""Classifier Studio's command line, without a window: `classify` images, list the `models` catalog, `live` recognition.

torch is imported only inside the commands that need it, so `--help` and `models` answer at once.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.catalog import DEFAULT_ARCH
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Event, Log, Progress
from engine.paths import app_version, user_log_dir
from engine.specs import BACKENDS as BACKEND_CHOICES
from engine.specs import DEVICE_CHOICES
from engine.specs import PRECISIONS as PRECISION_CHOICES
from engine.weights import WEIGHTS_SUFFIXES

if TYPE_CHECKING:
    from engine.predict import Classifier
    from engine.results import ImageResult
    from engine.specs import ModelSpec

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # some files could not be classified; the others' results were printed
EXIT_USAGE = 2  # bad arguments, or the model could not be loaded
EXIT_BUG = 3
EXIT_CANCELLED = 130  # the shell convention for "stopped by Ctrl+C"

# Copies of engine.predict's defaults: that module imports torch, which --help must not wait for.
# tests/test_cli.py checks that the copies agree.
DEFAULT_TOPK = 5
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class Command:
    """One subcommand; `models`, `live`, `train` and `evaluate` live in modules of their own (engine/cli_*.py)."""

    name: str
    summary: str
    epilog: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _tolerate_unprintable_characters()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; argparse has printed what to say
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE if exc.code else EXIT_OK
    return run_guarded(args.run, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Classifier Studio: classify images with timm models. Without arguments it opens the window.",
        epilog=TOP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"Classifier Studio {app_version()}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def run_guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Runs a command; every failure becomes a short message and an exit code, never a traceback."""
    try:
        return run(args)
    except UserFacingError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return EXIT_USAGE
    except (Cancelled, KeyboardInterrupt):
        print("Cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader (`| head`) stopped reading; send the rest to devnull so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SOME_FAILED
    except Exception as exc:  # a bug: the details go to the log, the user gets one line
        return _report_bug(exc)


def default_model_spec() -> ModelSpec:
    """The model `classify` uses when no --model is given: the built-in one, which needs no network."""
    from engine.specs import spec_for_name

    return spec_for_name(DEFAULT_ARCH)


def model_spec_from_args(model: str | None, weights: str | None) -> ModelSpec:
    """--model: a catalog/timm name (Hub weights) or a bundle path; --weights: a file for the named architecture."""
    from engine.specs import Bundle, ModelSpec, WeightsFile, spec_for_name

    if weights is not None:
        if not model or _is_path(model):
            raise UserFacingError(
                "--weights needs --model to name the architecture the weights were trained for.",
                "For example: --model resnet50 --weights my_weights.pth (a bundle needs no --weights).",
            )
        return ModelSpec(spec_for_name(model).arch, WeightsFile(weights))
    if model is None:
        return default_model_spec()
    if _is_path(model):
        if not Path(model).exists():
            raise UserFacingError(f"There is no model bundle at {model}.", "Check the path, or give a model name.")
        return ModelSpec(source=Bundle(model))
    return spec_for_name(model)


def _is_path(model: str) -> bool:
    # Names may contain "/" ("torchvision/alexnet"), so only an existing path or a weights suffix means a file.
    return Path(model).exists() or model.lower().endswith(WEIGHTS_SUFFIXES)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the model and where it runs, shared by classify and live."""
    add = parser.add_argument
    add(
        "--model",
        metavar="NAME|BUNDLE",
        help="a catalog or timm model name (pretrained weights from the Hugging Face Hub), or a Classifier Studio "
        "bundle folder/.safetensors file (default: a small general-purpose ImageNet model)",
    )
    add("--weights", metavar="FILE", help="a .safetensors/.pth weights file for the --model architecture")
    add("--device", choices=DEVICE_CHOICES, default="auto", help="where the model runs (default: auto)")
    add("--precision", choices=PRECISION_CHOICES, default="fp32", help="number format (default: fp32)")
    add(
        "--backend", choices=BACKEND_CHOICES, default="auto",
        help="what runs the model: auto = ONNX Runtime on the CPU (exported and checked once, then cached), "
        "PyTorch on GPUs (default: auto)",
    )
    add("--int8", action="store_true", help="CPU only: int8 ONNX Runtime, faster and slightly less accurate")


def load_classifier(
    spec: ModelSpec, args: argparse.Namespace, reporter: StderrReporter, cancel: CancelToken
) -> Classifier:
    """The model on the device and backend the arguments ask for, with a line saying what runs it.

    A model ONNX Runtime ran before starts from its checked ONNX file without importing torch (engine.quick_start).
    """
    from engine.quick_start import quick_classifier, remember
    from engine.specs import InferenceChoice

    choice = InferenceChoice(args.device, args.precision, args.backend, args.int8)
    reporter.line(f"Loading {spec.arch or spec.source.path}…")
    classifier = quick_classifier(spec, choice, reporter)
    if classifier is None:
        from engine.models import load_model  # deferred: torch takes seconds to import
        from engine.predict import Classifier
        from engine.runtime import create_backend

        try:
            loaded = load_model(spec, args.device, args.precision, reporter, cancel)
        except UserFacingError as exc:
            raise _for_command_line(exc) from exc
        classifier = Classifier(loaded, create_backend(loaded, args.backend, args.int8, on_event=reporter, cancel=cancel))
        remember(spec, choice, classifier)
    loaded, backend = classifier.loaded, classifier.backend
    reporter.line(f"Using {loaded.arch} from {loaded.source} on {loaded.device.description} · {backend.name}")
    if backend.agreement is not None:
        reporter.line(f"int8: {backend.agreement.describe()}")
    return classifier


def _add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="image files, or folders (searched recursively)")
    add_model_arguments(parser)
    add("--topk", type=_positive_int, default=DEFAULT_TOPK, metavar="K", help="classes per image (default: 5)")
    add("--batch-size", type=_positive_int, default=DEFAULT_BATCH, metavar="N", help="images per batch (default: 8)")
    add("--json", action="store_true", help="print one JSON object per image on stdout, nothing else")


def _run_classify(args: argparse.Namespace) -> int:
    from engine.predict import expand_paths

    spec = model_spec_from_args(args.model, args.weights)
    reporter = StderrReporter(sys.stderr)
    cancel = CancelToken()
    with cancel_on_ctrl_c(cancel):
        paths = expand_paths(args.paths, cancel)
        if not paths:
            raise UserFacingError(f"No image files in {', '.join(args.paths)}.", "Give image files or folders of them.")
        classifier = load_classifier(spec, args, reporter, cancel)
        started = time.perf_counter()
        show = _print_json if args.json else _print_human
        results = classifier.classify_files(paths, args.topk, args.batch_size, show, reporter, cancel)
        cancel.check()  # a Ctrl+C during the last batch still means "stopped by the user"
    failed = sum(result.error is not None for result in results)
    summary = f"{len(results) - failed} of {len(results)} images classified in {time.perf_counter() - started:.1f} s"
    reporter.line(f"{summary}; {failed} could not be read." if failed else f"{summary}.")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _for_command_line(exc: UserFacingError) -> UserFacingError:
    from engine.hub import OFFLINE_HINT

    if exc.hint != OFFLINE_HINT:
        return exc
    # The engine's hint names the window's menu; here the fix is an option.
    return UserFacingError(
        exc.message,
        "Connect to the internet to download it once (it is cached afterwards), or use a file you already have: "
        "--model BUNDLE, or --model ARCH --weights FILE.",
    )


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


class StderrReporter:
    """Shows engine events on stderr: a live download line on a terminal, one line per download otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._announced: set[str] = set()
        self._line_open = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, Log) and event.level != "info":
            self.line(f"{event.level}: {event.text}")
        elif isinstance(event, Progress) and event.unit == "bytes":
            self._download(event)

    def line(self, text: str) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        print(text, file=self.stream, flush=True)

    def _download(self, progress: Progress) -> None:
        total = f" / {progress.total / 1e6:.1f} MB" if progress.total else ""
        if self.live:
            percent = f"{progress.fraction:4.0%}  " if progress.fraction is not None else ""
            self.stream.write(f"\r{progress.what}: {percent}{progress.done / 1e6:.1f} MB{total}   ")
            self.stream.flush()
            self._line_open = True
        elif progress.what not in self._announced:
            self._announced.add(progress.what)
            size = f" ({progress.total / 1e6:.1f} MB)" if progress.total else ""
            self.line(f"{progress.what}{size}…")


@contextlib.contextmanager
def cancel_on_ctrl_c(cancel: CancelToken) -> Iterator[None]:
    """The first Ctrl+C cancels at the engine's next safe point; a second one stops at once."""

    def on_interrupt(_signum, _frame) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        print("\nCancelling… (press Ctrl+C again to stop at once)", file=sys.stderr, flush=True)

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread (an embedding caller): Ctrl+C keeps its usual meaning
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _add_live_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.cli_live import add_arguments  # the live command lives in its own module, which builds on this one

    add_arguments(parser)


def _run_live(args: argparse.Namespace) -> int:
    from engine.cli_live import run

    return run(args)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def bug_log_path() -> Path:
    """Where details of unexpected errors go: a log beside the window's, in the user's log folder."""
    return user_log_dir() / "cli.log"


def _report_bug(exc: BaseException) -> int:
    path = bug_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as log:  # appended, not atomic: a log grows, it is never replaced
            log.write(f"--- {datetime.datetime.now().isoformat(timespec='seconds')} {' '.join(sys.argv)}\n")
            log.write("".join(traceback.format_exception(exc)))
        where = f"details are in {path}"
    except OSError:
        traceback.print_exception(exc)  # no log can be written: show the details rather than lose them
        where = "details are above"
    print(f"something went wrong: {type(exc).__name__}: {exc} ({where}; please report it)", file=sys.stderr)
    return EXIT_BUG


def _tolerate_unprintable_characters() -> None:
    # A file name or label the console's encoding cannot show must not abort the run.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")


TOP_EPILOG = """\
examples:
  %(prog)s classify photo.jpg
  %(prog)s classify holiday/ --topk 3 --json > results.jsonl
  %(prog)s classify photo.jpg --model resnet50 --device cuda --precision fp16
  %(prog)s classify photo.jpg --model my_bundle/
  %(prog)s models --tag fastest
  %(prog)s live 0
  %(prog)s --self-test        check this installation: model, ONNX Runtime, video, training, window

Run a command with --help for its options.
"""

CLASSIFY_EPILOG = f"""\
--model takes a name from `models` (e.g. resnet50, "ResNet-50"), any timm model name, or a bundle saved
by Classifier Studio. Hub weights are downloaded once into the Hugging Face cache; offline, give a file.

examples:
  %(prog)s photo.jpg
  %(prog)s holiday/ pets/ --topk 3
  %(prog)s holiday/ --json > results.jsonl
  %(prog)s photo.jpg --model resnet50
  %(prog)s photo.jpg --model my_bundle/
  %(prog)s photo.jpg --model resnet50 --weights finetuned.safetensors

exit status:
  {EXIT_OK}    every image was classified
  {EXIT_SOME_FAILED}    some files could not be read (the others' results are printed)
  {EXIT_USAGE}    bad arguments, or the model could not be loaded
  {EXIT_BUG}    something unexpected went wrong (details are in the log)
  {EXIT_CANCELLED}  cancelled with Ctrl+C
"""

LIVE_EPILOG = f"""\
Frames are read in real time; the model always takes the newest one, so a slow model skips frames
rather than falling behind. The summary (inference and capture FPS, latency, frames dropped) goes to
stderr at the end, or is the last JSON object with --json. A camera that is unplugged is retried.

examples:
  %(prog)s 0
  %(prog)s clip.mp4 --frames 100 --json > predictions.jsonl
  %(prog)s rtsp://192.168.1.20/stream --model resnet50 --device cuda --topk 3
  %(prog)s 0 --model my_bundle/ --smoothing 0.7 --mirror

exit status:
  {EXIT_OK}    the run ended (--frames reached, or the end of the file)
  {EXIT_USAGE}    bad arguments, the source could not be opened, or the model could not be loaded
  {EXIT_BUG}    something unexpected went wrong (details are in the log)
  {EXIT_CANCELLED}  stopped with Ctrl+C (the summary is still printed)
"""

# The command modules build on this one but import from it only inside their functions, so they load here.
from engine import cli_evaluate, cli_models, cli_train

COMMANDS: tuple[Command, ...] = (
    Command(
        "classify", "Classify images and print the top classes of each.", CLASSIFY_EPILOG,
        _add_classify_arguments, _run_classify,
    ),
    Command("models", "List the model catalog.", cli_models.EPILOG, cli_models.add_arguments, cli_models.run),
    Command(
        "live", "Recognise what a camera, video file or stream shows, frame by frame.", LIVE_EPILOG,
        _add_live_arguments, _run_live,
    ),
    Command(
        "train", "Teach a model the classes of a folder of class subfolders; Ctrl+C keeps the run resumable.",
        cli_train.TRAIN_EPILOG, cli_train.add_train_arguments, cli_train.run_train,
    ),
    Command(
        "evaluate", "Measure a saved model on a folder of labelled images: accuracy, per-class figures, confusions.",
        cli_evaluate.EPILOG, cli_evaluate.add_arguments, cli_evaluate.run,
    ),
)
