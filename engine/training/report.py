"""Writes a training report folder: one self-contained report.html plus metrics.json, per_class.csv and confusion.csv.

The HTML embeds its charts (SVG), thumbnails (base64 JPEG) and style, so it can be mailed or opened offline.
"""
from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from engine.decode import ImageDecodeError, decode_image
from engine.files import atomic_path
from engine.training.charts_svg import Series, confusion_heatmap, line_chart, truncate
from engine.training.metrics import ClassMetrics, Evaluation
from engine.training.plan import EpochMetrics

GALLERY_SIZE = 24  # thumbnails per gallery: enough to see a pattern, small enough to keep the file light
THUMB_PX = 160
TRAIN_COLOUR, VAL_COLOUR = "#2563eb", "#ea580c"
REPORT_FORMAT = "classifier-studio-report"


@dataclass(frozen=True)
class MeasuredOn:
    """What the report's main figures were measured on: a section name and a sentence for the reader."""

    name: str
    note: str
    training_curves: bool = True  # a section, even empty, for the curves; a saved model measured again has none


IMAGES_USED = {"all": "all of", "test": "the test folder of", "val": "the validation folder of"}
VALIDATION_SET = MeasuredOn("Validation set", "Measured on the validation set: images held out from training.")


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    per_class_csv: Path
    confusion_csv: Path


def write_report(
    folder: str | os.PathLike,
    evaluation: Evaluation,
    history: Sequence[EpochMetrics] = (),
    summary: Mapping[str, object] = {},
    test_evaluation: Evaluation | None = None,
    title: str = "Training report",
    measured_on: MeasuredOn = VALIDATION_SET,
) -> ReportFiles:
    """Write the four report files into `folder` (created if needed).

    All contents are made first, then written to temporary files beside their targets, then renamed into place,
    metrics.json first and report.html last: an interrupted write leaves the previous report's files whole.
    Raises UserFacingError when the folder cannot be written.
    """
    folder = Path(folder)
    files = ReportFiles(
        html=folder / "report.html",
        json=folder / "metrics.json",
        per_class_csv=folder / "per_class.csv",
        confusion_csv=folder / "confusion.csv",
    )
    contents = {  # renamed in reverse order of this listing: the nested atomic_path blocks unwind inside out
        files.html: html_report(evaluation, history, summary, test_evaluation, title, measured_on),
        files.confusion_csv: confusion_csv_text(evaluation),
        files.per_class_csv: per_class_csv_text(evaluation),
        files.json: metrics_json_text(evaluation, history, summary, test_evaluation, title),
    }
    with contextlib.ExitStack() as stack:
        for target, text in contents.items():
            tmp = stack.enter_context(atomic_path(target))
            # newline="" keeps the CSV module's own line endings; text files get "\n" on every platform.
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
    return files


def images_used(part: str, data_dir: str | os.PathLike) -> str:
    """Which of a folder's images an evaluation used, as `evaluate_bundle` names the part: "the test folder of X"."""
    return f"{IMAGES_USED[part]} {data_dir}"


def write_evaluation_report(
    folder: str | os.PathLike, evaluation: Evaluation, part: str, data_dir: str | os.PathLike, model_name: str,
    bundle: str | os.PathLike,
) -> ReportFiles:
    """The report of a saved model measured on a folder of labelled pictures (`evaluate --report`, Evaluate…)."""
    used = images_used(part, data_dir)
    summary = {"Model": model_name, "Saved as": str(bundle), "Pictures": used,
               "Measured": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    measured_on = MeasuredOn("Evaluation", f"Measured on {used}: labelled pictures, one folder per class.",
                             training_curves=False)
    return write_report(folder, evaluation, summary=summary, title=f"{model_name}: evaluation",
                        measured_on=measured_on)


def metrics_json_text(
    evaluation: Evaluation,
    history: Sequence[EpochMetrics],
    summary: Mapping[str, object],
    test_evaluation: Evaluation | None,
    title: str,
) -> str:
    document = {
        "format": REPORT_FORMAT,
        "version": 1,
        "title": title,
        "summary": dict(summary),
        "evaluation": evaluation.to_dict(),
        "test_evaluation": test_evaluation.to_dict() if test_evaluation is not None else None,
        "history": [epoch.to_dict() for epoch in history],
    }
    # default=str: summary values such as paths or dates are written as their text rather than failing the report.
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def per_class_csv_text(evaluation: Evaluation) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("class", "precision", "recall", "f1", "support"))
    for m in evaluation.per_class:
        writer.writerow((m.name, f"{m.precision:.6f}", f"{m.recall:.6f}", f"{m.f1:.6f}", m.support))
    return out.getvalue()


def confusion_csv_text(evaluation: Evaluation) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("true \\ predicted", *evaluation.labels))
    for label, row in zip(evaluation.labels, evaluation.confusion):
        writer.writerow((label, *row))
    return out.getvalue()


def html_report(
    evaluation: Evaluation,
    history: Sequence[EpochMetrics] = (),
    summary: Mapping[str, object] = {},
    test_evaluation: Evaluation | None = None,
    title: str = "Training report",
    measured_on: MeasuredOn = VALIDATION_SET,
) -> str:
    """The whole report as one HTML document."""
    body = [
        f"<header><h1>{escape(title)}</h1>",
        ('<p class="muted">Made by Classifier Studio. The numbers are also in metrics.json, per_class.csv and '
         "confusion.csv beside this file.</p></header>"),
        f'<p class="muted">{escape(measured_on.note)}</p>',
        _headline(evaluation, measured_on.name),
    ]
    if summary:
        body.append("<section><h2>Summary</h2>" + _summary_table(summary) + "</section>")
    if measured_on.training_curves:
        body.append(_curves(history))
    body.append(_evaluation_details(evaluation, measured_on.name))
    if test_evaluation is not None:
        body.append('<section class="test"><h2>Test set</h2><p class="muted">Images the model never saw during '
                    "training or model selection: the fairest estimate of how it will do on new pictures.</p>"
                    + _headline(test_evaluation, "Test set") + "</section>")
        body.append(_evaluation_details(test_evaluation, "Test set"))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _headline(evaluation: Evaluation, name: str) -> str:
    cards = [("Accuracy", _percent(evaluation.accuracy))]
    if evaluation.top5 is not None:
        cards.append(("Top-5 accuracy", _percent(evaluation.top5)))
    cards += [
        ("Loss", f"{evaluation.loss:.3f}"),
        ("Macro F1", f"{evaluation.macro_f1:.3f}"),
        ("Images", f"{evaluation.num_images:,}"),
        ("Classes", str(len(evaluation.labels))),
    ]
    items = "".join(f'<div class="card"><div class="value">{escape(value)}</div>'
                    f'<div class="label">{escape(label)}</div></div>' for label, value in cards)
    return f'<div class="cards" aria-label="{escape(name)} headline numbers">{items}</div>'


def _summary_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_summary_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_summary_value(v) for v in value)
    return str(value)


def _summary_key(key: object) -> str:
    text = str(key)
    if "_" in text and " " not in text:  # an identifier such as images_per_class reads as "Images per class"
        text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def _summary_table(summary: Mapping[str, object]) -> str:
    rows = "".join(f"<tr><th>{escape(_summary_key(k))}</th><td>{escape(_summary_value(v))}</td></tr>"
                   for k, v in summary.items())
    return f'<table class="summary">{rows}</table>'


def _curves(history: Sequence[EpochMetrics]) -> str:
    if not history:
        return ("<section><h2>Training curves</h2><p class=\"muted\">No training history was recorded for this "
                "model, so there are no loss or accuracy curves.</p></section>")
    epochs = [float(h.epoch) for h in history]
    best = float(history[-1].best_epoch) if history[-1].best_epoch else None
    loss = line_chart(
        [Series("train", epochs, [h.train_loss for h in history], TRAIN_COLOUR),
         Series("validation", epochs, [h.val_loss for h in history], VAL_COLOUR, dashed=True)],
        title="Loss", x_label="epoch", y_label="loss", y_format=lambda v: f"{v:.3g}", y_clamp=(0.0, None),
        marker_x=best, marker_label="best",
    )
    accuracy = line_chart(
        [Series("train", epochs, [h.train_accuracy for h in history], TRAIN_COLOUR),
         Series("validation", epochs, [h.val_accuracy for h in history], VAL_COLOUR, dashed=True)],
        title="Accuracy", x_label="epoch", y_label="accuracy", y_format=lambda v: f"{v * 100:.0f} %",
        y_clamp=(0.0, 1.0), marker_x=best, marker_label="best",
    )
    note = ("Validation lower than training is normal; a validation loss that rises while the training loss keeps "
            "falling means the model has started to memorise its training images (over-fitting).")
    return (f'<section><h2>Training curves</h2><div class="charts">{loss}{accuracy}</div>'
            f'<p class="muted">{note}</p></section>')


def _evaluation_details(evaluation: Evaluation, name: str) -> str:
    shown = evaluation.seen_only()
    some = (f" Only the {len(shown.labels)} of the model's {len(evaluation.labels)} classes that have images or were "
            "answered are shown; per_class.csv and confusion.csv have them all."
            if len(shown.labels) < len(evaluation.labels) else "")
    return "\n".join((
        f"<section><h2>{escape(name)}: confusion matrix</h2>",
        ('<p class="muted">Rows are the true class, columns what the model predicted. The shade shows the share of '
         "each true class's images: green on the diagonal (right), orange where images were taken for another "
         f"class. Hover a cell or a cut-off name for details.{escape(some)}</p>"),
        f'<div class="scroll">{confusion_heatmap(shown.labels, shown.confusion)}</div></section>',
        f"<section><h2>{escape(name)}: per-class results</h2>{_per_class_table(shown.per_class)}</section>",
        f"<section><h2>{escape(name)}: mistakes</h2>{_gallery(evaluation)}</section>",
    ))


def _per_class_table(per_class: Sequence[ClassMetrics]) -> str:
    rows = []
    for m in per_class:
        bar = f'<span class="bar" style="width:{m.f1 * 100:.0f}%"></span>'
        rows.append(
            f'<tr><td class="name" title="{escape(m.name)}">{escape(truncate(m.name, 40))}</td>'
            f"<td>{m.precision:.3f}</td><td>{m.recall:.3f}</td>"
            f'<td class="f1">{bar}<span>{m.f1:.3f}</span></td><td>{m.support}</td></tr>'
        )
    return ('<table class="per-class"><thead><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th>'
            f'<th>Images</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            '<p class="muted">Precision: of the images predicted as the class, the share that were right. Recall: of '
            "the class's images, the share found. F1 combines both.</p>")


def _gallery(evaluation: Evaluation) -> str:
    mistakes = evaluation.num_mistakes
    if mistakes == 0:
        return '<p class="muted">No mistakes: every image was classified correctly.</p>'
    shown = evaluation.misclassified[:GALLERY_SIZE]
    intro = (f"{mistakes} of {evaluation.num_images} images were misclassified; "
             + (f"these are the {len(shown)} the model was most sure about." if mistakes > len(shown)
                else "the model's most confident mistakes come first."))
    figures = []
    for m in shown:
        uri = _thumbnail_uri(m.path)
        path = escape(m.path or "(no path recorded)")
        picture = (f'<img src="{uri}" alt="{path}">' if uri
                   else '<div class="placeholder">image not available</div>')
        caption = (f"true: {escape(m.true_label)} · taken for: {escape(m.predicted_label)} "
                   f"({m.confidence * 100:.0f} %)")
        figures.append(f'<figure title="{path}">{picture}<figcaption>{caption}'
                       f'<span class="file">{escape(os.path.basename(m.path))}</span></figcaption></figure>')
    return f'<p class="muted">{escape(intro)}</p><div class="gallery">{"".join(figures)}</div>'


def _thumbnail_uri(path: str) -> str | None:
    """A data: URI of a small JPEG of the image, or None when it cannot be read (moved, deleted, damaged)."""
    if not path:
        return None
    try:
        image = decode_image(path)
        image.thumbnail((THUMB_PX, THUMB_PX))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=82)
    except (ImageDecodeError, OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2563eb; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin: 0 0 12px; font-size: 19px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 20px 24px; margin: 20px 0; }
section.test { border-left: 4px solid var(--accent); }
.muted { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 14px 18px; min-width: 140px; }
.card .value { font-size: 26px; font-weight: 650; }
.card .label { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; }
table.summary th { width: 30%; color: var(--muted); font-weight: 500; }
table.per-class td:not(.name), table.per-class th:not(:first-child) { text-align: right;
  font-variant-numeric: tabular-nums; }
td.f1 { position: relative; min-width: 120px; }
td.f1 .bar { position: absolute; left: 0; top: 6px; bottom: 6px; background: #dbeafe; border-radius: 3px; }
td.f1 span:last-child { position: relative; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 14px; }
figure { margin: 0; background: var(--bg); border-radius: 10px; padding: 8px; }
figure img, .placeholder { display: block; width: 160px; height: 160px; margin: 0 auto; object-fit: contain; }
.placeholder { border: 2px dashed #cbd2d9; border-radius: 8px; color: var(--muted); font-size: 13px;
  display: flex; align-items: center; justify-content: center; text-align: center; }
figcaption { font-size: 12.5px; margin-top: 6px; overflow-wrap: anywhere; }
figcaption .file { display: block; color: var(--muted); font-size: 11.5px; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
"""
