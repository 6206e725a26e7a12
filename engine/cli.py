"""Classifier Studio's command line, without a window: the commands of engine/cli_*.py behind one parser, and what
turns every failure into a message and an exit code.

torch is imported only inside the commands that need it, so `--help` and `models` answer at once.
"""
from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from engine import cli_classify, cli_evaluate, cli_explain, cli_live, cli_models, cli_train
from engine.cli_common import EXIT_BUG, EXIT_CANCELLED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from engine.errors import Cancelled, UserFacingError
from engine.paths import app_version, user_log_dir


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
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=command.SUMMARY,
            description=command.SUMMARY,
            epilog=command.EPILOG,
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
  %(prog)s explain photo.jpg   where the model looked: a heat map of the parts its answer depends on
  %(prog)s --self-test        check this installation: model, ONNX Runtime, video, training, window

Run a command with --help for its options.
"""

# Each command's module holds its SUMMARY, its EPILOG (examples, exit status), add_arguments(parser) and run(args).
COMMANDS = {
    "classify": cli_classify, "models": cli_models, "live": cli_live, "train": cli_train, "evaluate": cli_evaluate,
    "explain": cli_explain,
}
