"""What Classifier Studio's command-line commands share: exit codes, choosing and loading the model, progress on
stderr, Ctrl+C. No torch at import time: `--help` and `models` answer at once.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.catalog import DEFAULT_ARCH
from engine.clip_catalog import (
    CLIP_MODELS,
    DEFAULT_CLIP_ARCH,
    DEFAULT_PROMPT,
    is_clip_arch,
    parse_classes,
    parse_prompt,
    resolve_clip_arch,
)
from engine.errors import UserFacingError
from engine.events import CancelToken, Event, Log, Progress
from engine.specs import BACKENDS as BACKEND_CHOICES
from engine.specs import DEVICE_CHOICES
from engine.specs import PRECISIONS as PRECISION_CHOICES
from engine.weights import WEIGHTS_SUFFIXES

if TYPE_CHECKING:
    from engine.predict import Classifier
    from engine.specs import ModelSpec

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # some files could not be classified; the others' results were printed
EXIT_USAGE = 2  # bad arguments, or the model could not be loaded
EXIT_BUG = 3
EXIT_CANCELLED = 130  # the shell convention for "stopped by Ctrl+C"


def exit_status(*rows: tuple[int, str]) -> str:
    """An epilog's "exit status" block from (code, meaning) rows, so the codes shown are the codes returned."""
    return "exit status:\n" + "".join(f"  {code:<5}{meaning}\n" for code, meaning in rows)


def default_model_spec() -> ModelSpec:
    """The model `classify` uses when no --model is given: the built-in one, which needs no network."""
    from engine.specs import spec_for_name

    return spec_for_name(DEFAULT_ARCH)


def model_spec_from_args(
    model: str | None, weights: str | None, classes: str | None = None, prompt: str | None = None
) -> ModelSpec:
    """--model: a catalog/timm name (Hub weights) or a bundle path; --weights: a file for the named architecture;
    --classes: zero-shot class names for a CLIP --model (the default CLIP model when there is none), each put in
    the sentence --prompt."""
    from engine.specs import Bundle, ModelSpec, WeightsFile, ZeroShot, spec_for_name

    if prompt is not None and classes is None:
        raise UserFacingError(
            "--prompt is the sentence zero-shot class names are put in, and no --classes were given.",
            'Add the classes, e.g. --classes "sparrow, robin" --prompt "a photo of a {}, a type of bird."',
        )
    if classes is not None or (model is not None and is_clip_arch(model)):
        if model is not None and not is_clip_arch(model):
            raise UserFacingError(
                f"--classes needs a CLIP model, and {model} is not one.",
                f"Leave --model out for {DEFAULT_CLIP_ARCH}, or name another: "
                f"{', '.join(m.arch for m in CLIP_MODELS)}.",
            )
        if classes is None:
            raise UserFacingError(
                f"{model} sorts images into classes you name.", 'Give them with --classes "cat, dog, coffee mug".'
            )
        source = ZeroShot(parse_classes(classes), weights or "", parse_prompt(prompt or ""))
        return ModelSpec(resolve_clip_arch(model or DEFAULT_CLIP_ARCH), source)
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
    add(
        "--classes",
        metavar="NAMES",
        help='zero-shot: sort images into these classes, no training needed ("cat, dog, coffee mug"); with a CLIP '
        f"--model (default {DEFAULT_CLIP_ARCH}; see `models`)",
    )
    add(
        "--prompt",
        metavar="SENTENCE",
        help=f'zero-shot: the sentence each class name is put in, at its {{}} (default: "{DEFAULT_PROMPT}"); saying '
        'what the pictures are helps, e.g. "a photo of a {}, a type of bird."',
    )
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
        backend = create_backend(loaded, args.backend, args.int8, on_event=reporter, cancel=cancel)
        classifier = Classifier(loaded, backend)
        remember(spec, choice, classifier)
    loaded, backend = classifier.loaded, classifier.backend
    reporter.line(f"Using {loaded.arch} from {loaded.source} on {loaded.device.description} · {backend.name}")
    if backend.agreement is not None:
        reporter.line(f"int8: {backend.agreement.describe()}")
    return classifier


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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
