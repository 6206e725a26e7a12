"""Keeping what the live view saw: snapshots (PNG plus a JSON of the predictions) and a CSV log of predictions.

A snapshot is written atomically: it appears whole. A log grows at its path, row by row, each flushed as it comes:
a recording cut short by a crash or a power cut keeps every row logged before it.
"""
from __future__ import annotations

import csv
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from engine.errors import UserFacingError
from engine.files import write_atomically, write_text_atomically
from engine.live.sources import Frame, opencv
from engine.live.types import LivePrediction


def save_snapshot(folder: str | os.PathLike, frame: Frame, prediction: LivePrediction | None,
                  model_name: str) -> tuple[Path, Path]:
    """Write the frame as PNG and its predictions as JSON beside it; returns (png, json)."""
    when = _wall_time(frame.captured_at)
    stem = f"snapshot-{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}-frame{frame.index}"
    folder = Path(folder)
    png, info = folder / f"{stem}.png", folder / f"{stem}.json"
    copy = 1
    while png.exists() or info.exists():  # the same frame saved twice in one millisecond keeps both
        copy += 1
        png, info = folder / f"{stem}-{copy}.png", folder / f"{stem}-{copy}.json"
    ok, encoded = opencv().imencode(".png", frame.image)
    if not ok:
        raise UserFacingError("The snapshot could not be encoded as PNG.", "Try again with the next frame.")
    write_atomically(png, lambda tmp: tmp.write_bytes(encoded.tobytes()))
    record = {
        "time": when.isoformat(timespec="milliseconds"),
        "image": png.name,
        "frame_index": frame.index,
        "width": int(frame.image.shape[1]),
        "height": int(frame.image.shape[0]),
        "model": model_name,
        "top": [] if prediction is None else _top_json(prediction),
        "latency_ms": None if prediction is None else round(prediction.latency_ms, 2),
        "prediction_frame_index": None if prediction is None else prediction.frame_index,
    }
    write_text_atomically(info, json.dumps(record, indent=2))
    return png, info


class PredictionLog:
    """A CSV of predictions, one row each: timestamp (ISO), frame_index, latency_ms, top1_label, top1_prob, …

    Rows are written to `path` itself and flushed one by one (the save dialog has asked before replacing a file).
    """

    def __init__(self, path: str | os.PathLike, topk: int) -> None:
        self.path = Path(path)
        self.topk = topk
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise self._cannot_write(exc, "Choose another folder.") from exc
        self._writer = csv.writer(self._file)
        header = ["timestamp", "frame_index", "latency_ms"]
        for rank in range(1, topk + 1):
            header += [f"top{rank}_label", f"top{rank}_prob"]
        self._write(header)
        self.rows = 0

    def write(self, prediction: LivePrediction) -> None:
        row = [
            _wall_time(prediction.shown_at).isoformat(timespec="milliseconds"),
            prediction.frame_index,
            f"{prediction.latency_ms:.2f}",
        ]
        for rank in range(self.topk):
            if rank < len(prediction.top):
                row += [prediction.top[rank].label, f"{prediction.top[rank].prob:.6f}"]
            else:  # a model with fewer classes than k
                row += ["", ""]
        self._write(row)
        self.rows += 1

    def close(self) -> None:
        """Ends the log; idempotent. A full disk shows here at the latest, as a UserFacingError."""
        try:
            self._file.close()
        except OSError as exc:
            raise self._cannot_write(exc, "Free some disk space or choose another folder.") from exc

    def __enter__(self) -> PredictionLog:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()  # rows logged before an error are still good rows: keep them

    def _write(self, row: list) -> None:
        try:
            self._writer.writerow(row)
            self._file.flush()
        except OSError as exc:
            raise self._cannot_write(exc, "Free some disk space or choose another folder.") from exc

    def _cannot_write(self, exc: OSError, hint: str) -> UserFacingError:
        return UserFacingError(f"Could not write {self.path}: {exc.strerror or exc}.", hint)


def _top_json(prediction: LivePrediction) -> list[dict]:
    return [{"label": t.label, "index": t.index, "prob": round(t.prob, 6)} for t in prediction.top]


def _wall_time(perf_time: float) -> datetime:
    """A perf_counter() reading as local wall-clock time."""
    return datetime.now().astimezone() - timedelta(seconds=time.perf_counter() - perf_time)
