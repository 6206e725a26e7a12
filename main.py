"""Classifier Studio's front door: no arguments opens the window, a subcommand runs the command line.

Imports nothing heavy until it knows which path it takes, so `--help` answers at once.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from gui.app import run_gui

        return run_gui(argv)
    from engine.cli import main as run_cli

    return run_cli(argv)


if __name__ == "__main__":
    import multiprocessing

    # A packaged (frozen) app starts its worker processes through this same executable.
    multiprocessing.freeze_support()
    sys.exit(main())
