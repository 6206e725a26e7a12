"""`explain`: where the model looked in a photo, saved as a heat-map picture (engine.explain), as the window's
"Where it looked" button shows it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli_common import EXIT_OK, StderrReporter, add_model_arguments, cancel_on_ctrl_c, load_classifier, \
    model_spec_from_args
from engine.errors import UserFacingError
from engine.events import CancelToken

SUMMARY = "Show where the model looked in a photo: a heat map of the parts its answer depends on."
EPILOG = """\
Each part of what the model sees is hidden in turn; warm colours mark the parts whose hiding lowers the class's
confidence most. The picture is saved as PNG: the photo as the model sees it (resized and cropped), heat drawn over it.

examples:
  %(prog)s cat.jpg                                  # writes cat-where-it-looked.png here
  %(prog)s cat.jpg --class "Egyptian cat" --out egyptian.png
  %(prog)s part_0042.png --model my_bundle/ --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("image", metavar="IMAGE", help="the photo")
    add("--class", dest="class_name", metavar="LABEL",
        help="the class to look for, by its name (default: the model's top class for this photo)")
    add("--out", metavar="FILE.png",
        help="where to save the heat map, as PNG unless FILE's suffix names another format such as .jpg or .webp "
        "(default: IMAGE's name + -where-it-looked.png in this folder, never over an existing file)")
    add("--json", action="store_true", help="print the answer as one JSON object")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from engine.decode import decode_image
    from engine.explain import explain
    from engine.files import save_picture

    spec = model_spec_from_args(args.model, args.weights, args.classes, args.prompt)
    cancel = CancelToken()
    reporter = StderrReporter(sys.stderr)
    with cancel_on_ctrl_c(cancel):
        classifier = load_classifier(spec, args, reporter, cancel)
        image = decode_image(args.image, classifier.preprocessor.decode_size)
        index = None if args.class_name is None else class_index(classifier.loaded.labels, args.class_name)
        explanation = explain(classifier, image, index, cancel)
    out = Path(args.out) if args.out else free_name(Path(f"{Path(args.image).stem}-where-it-looked.png"))
    save_picture(explanation.overlay(), out)  # heat.jpg is a JPEG; no suffix, a PNG
    if args.json:
        print(json.dumps({
            "path": args.image, "label": explanation.label, "index": explanation.class_index,
            "prob": round(explanation.prob, 6), "prob_with_warmest_part_hidden": round(explanation.lowest_prob, 6),
            "heat_map": str(out),
        }))
    else:
        print(explanation.describe())
        print(f"heat map: {out}")
    return EXIT_OK


def class_index(labels: tuple[str, ...], name: str) -> int:
    """The class called `name` (exactly, else ignoring case; an ImageNet label such as "tabby, tabby cat" also
    answers to one of its comma-separated names)."""
    wanted = name.strip().casefold()
    for matches in (
        lambda label: label == name,
        lambda label: label.casefold() == wanted,
        lambda label: wanted in (part.strip().casefold() for part in label.split(",")),
    ):
        for index, label in enumerate(labels):
            if matches(label):
                return index
    close = [label for label in labels if wanted and wanted in label.casefold()][:5]
    raise UserFacingError(
        f"The model has no class “{name}”.",
        f"Did you mean: {', '.join(close)}?" if close else "`classify` lists the classes it gives for a photo.",
    )


def free_name(path: Path) -> Path:
    """`path`, or the first of path-2, path-3, … (before the suffix) that does not exist yet."""
    candidate, number = path, 2
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
    return candidate
