"""`models`: the model catalog as a table or JSON, filtered by family or tag.

Registered by engine/cli.py; it needs neither torch nor timm, so it answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from engine.catalog import TAGS, CatalogEntry, catalog
from engine.clip_catalog import CLIP_FAMILY, CLIP_MODELS, ZERO_SHOT_TAG, ClipModel
from engine.errors import UserFacingError

SUMMARY = "List the model catalog."
EPILOG = """\
GFLOPs are multiply-adds for one image at the listed input size; params are in millions.

examples:
  %(prog)s
  %(prog)s --family ResNet
  %(prog)s --tag "mobile/edge"
  %(prog)s --json

Zero-shot CLIP models (family CLIP, tag zero-shot), listed after the catalog, sort images into classes you name
(`classify --classes`); their GFLOPs are the image tower's, which runs once per image.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", metavar="X", help="only this family, e.g. ResNet or 'Vision Transformer'")
    parser.add_argument("--tag", metavar="T", help=f"only models with this tag: {', '.join((*TAGS, ZERO_SHOT_TAG))}")
    parser.add_argument("--json", action="store_true", help="print a JSON array of the entries")


def run(args: argparse.Namespace) -> int:
    entries, clips = catalog(), list(CLIP_MODELS)
    if args.family:
        families = [*dict.fromkeys(entry.family for entry in entries), CLIP_FAMILY]
        family = _choose(args.family, families, "model family")
        entries = [entry for entry in entries if entry.family == family]
        clips = clips if family == CLIP_FAMILY else []
    if args.tag:
        tag = _choose(args.tag, [*TAGS, ZERO_SHOT_TAG], "tag")
        entries = [entry for entry in entries if tag in entry.tags]
        clips = clips if tag == ZERO_SHOT_TAG else []
    if args.json:
        listed = [{**dataclasses.asdict(entry), "zero_shot": False} for entry in entries]
        print(json.dumps(listed + [_clip_json(model) for model in clips], indent=2))
        return 0
    if entries:
        print(format_table(entries))
    if clips:
        print(("\n" if entries else "") + "Zero-shot (CLIP): name your own classes with --classes, no training needed.")
        print(_clip_table(clips))
    return 0


def _clip_json(model: ClipModel) -> dict:
    """A CLIP model in the catalog's terms; it has no classes of its own: the user names them."""
    return {
        "arch": model.arch, "family": CLIP_FAMILY, "display_name": model.display_name, "params": model.params,
        "gflops": model.gmacs, "input_size": [224, 224], "tags": [ZERO_SHOT_TAG], "source": "open_clip",
        "num_classes": None, "zero_shot": True, "download_gb": round(model.download_gb, 2),
    }


def _clip_table(models: list[ClipModel]) -> str:
    width = max(len(model.display_name) for model in models)
    arch_width = max(len(model.arch) for model in models)
    return "\n".join(
        f"{model.display_name.ljust(width)}  {model.arch.ljust(arch_width)}  {model.params / 1e6:6.1f} M params"
        f"  {model.gmacs:6.2f} GFLOPs  {model.download_gb:.1f} GB download"
        for model in models
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
