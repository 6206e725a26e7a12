"""Saves classification results as CSV or JSON, atomically, for spreadsheets and scripts."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from engine.files import write_text_atomically
from engine.results import ImageResult

CSV_COLUMNS = ("path", "top1_label", "top1_index", "top1_prob", "ms", "error", "top_k")


def results_to_csv_text(results: Sequence[ImageResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        best = r.top[0] if r.top else None
        top_k = "; ".join(f"{t.label} ({t.prob:.4f})" for t in r.top)
        writer.writerow(
            [
                r.path,
                best.label if best else "",
                best.index if best else "",
                f"{best.prob:.6f}" if best else "",
                f"{r.ms:.2f}" if r.error is None else "",
                r.error or "",
                top_k,
            ]
        )
    return out.getvalue()


def export_results(results: Sequence[ImageResult], target: str | Path) -> Path:
    """Write `results` to `target`; the suffix (.csv or .json) picks the format."""
    target = Path(target)
    if target.suffix.lower() == ".json":
        text = json.dumps([r.as_json() for r in results], indent=2, ensure_ascii=False)
    else:
        text = results_to_csv_text(results)
    write_text_atomically(target, text)
    return target
