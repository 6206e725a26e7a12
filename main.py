"""Classifier Studio's front door: no arguments opens the window, image files or folders open it and classify
them (what a file manager's "Open with" does), a subcommand runs the command line, and `--self-test` checks that
this installation (or frozen build) works.

Imports nothing heavy until it knows which path it takes, so `--help` answers at once.
"""
from __future__ import annotations

import os
import sys
import time

LAUNCHED = time.perf_counter()  # start-up times in the log count from here
SELF_TEST_FLAG = "--self-test"
VERBOSE_FLAGS = ("-v", "--verbose")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == SELF_TEST_FLAG:
        return self_test(argv[1:])
    if not argv or opens_files(argv):
        from gui.app import run_gui

        return run_gui([], LAUNCHED, open_paths=argv)
    from engine.cli import main as run_cli

    return run_cli(argv)


def opens_files(argv: list[str]) -> bool:
    """True when every argument is an existing file or folder and the first is not a subcommand's name."""
    if any(arg.startswith("-") or not os.path.exists(arg) for arg in argv):
        return False
    from engine.cli import COMMANDS

    return argv[0] not in COMMANDS


def self_test(options: list[str]) -> int:
    """Run every self-test part, the window last; exit code 0 only if all pass. --verbose adds tracebacks."""
    unknown = [option for option in options if option not in VERBOSE_FLAGS]
    if unknown:
        print(f"{SELF_TEST_FLAG} takes only --verbose, not: {' '.join(unknown)}", file=sys.stderr)
        return 2
    from engine.self_test import ENGINE_PARTS, run_self_test
    from gui.self_test_window import check_main_window

    return run_self_test([*ENGINE_PARTS, ("window", check_main_window)], verbose=bool(options))


if __name__ == "__main__":
    import multiprocessing

    # A packaged (frozen) app starts its worker processes through this same executable.
    multiprocessing.freeze_support()
    sys.exit(main())
