"""`models`: the model catalog as a table or JSON, filtered by family or tag.

Registered by engine/cli.py; it needs neither torch nor timm, so it answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from engine.catalog import TAGS, CatalogEntry, catalog
from engine.clip_catalog import CLIP_MODELS
from engine.errors import UserFacingError

SUMMARY = "List the model catalog."
EPILOG = """\
GFLOPs are multiply-adds for one image at the listed input size; params are in millions.

examples:
  %(prog)s
  %(prog)s --family ResNet
  %(prog)s --tag "mobile/edge"
  %(prog)s --json

Zero-shot CLIP models, listed after the catalog, sort images into classes you name (`classify --classes`).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", metavar="X", help="only this family, e.g. ResNet or 'Vision Transformer'")
    parser.add_argument("--tag", metavar="T", help=f"only models with this tag: {', '.join(TAGS)}")
    parser.add_argument("--json", action="store_true", help="print a JSON array of the entries")


def run(args: argparse.Namespace) -> int:
    entries = catalog()
    if args.family:
        family = _choose(args.family, list(dict.fromkeys(entry.family for entry in entries)), "model family")
        entries = [entry for entry in entries if entry.family == family]
    if args.tag:
        tag = _choose(args.tag, list(TAGS), "tag")
        entries = [entry for entry in entries if tag in entry.tags]
    if args.json:
        print(json.dumps([dataclasses.asdict(entry) for entry in entries], indent=2))
    else:
        print(format_table(entries))
        if not (args.family or args.tag):
            print(f"\nZero-shot (CLIP): name your own classes with --classes, no training needed.\n{_clip_table()}")
    return 0


def _clip_table() -> str:
    width = max(len(model.display_name) for model in CLIP_MODELS)
    arch_width = max(len(model.arch) for model in CLIP_MODELS)
    return "\n".join(
        f"{model.display_name.ljust(width)}  {model.arch.ljust(arch_width)}  {model.download_gb:.1f} GB download"
        for model in CLIP_MODELS
    )


def _choose(given: str, choices: list[str], what: str) -> str:
    for choice in choices:
        if choice.casefold() == given.strip().casefold():
            return choice
    raise UserFacingError(f"There is no {what} '{given}'.", f"Choose one of: {', '.join(choices)}.")


def format_table(entries: list[CatalogEntry]) -> str:
    header = ("Model", "Architecture", "Family", "Params (M)", "GFLOPs", "Input", "Tags")
    rows = [
        (e.display_name, e.arch, e.family, f"{e.params / 1e6:.1f}", f"{e.gflops:.2f}",
         f"{e.input_size[0]}x{e.input_size[1]}", ", ".join(e.tags))
        for e in entries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    numeric = {3, 4}  # right-aligned so the decimal points line up

    def format_row(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join(format_row(row) for row in (header, *rows))
