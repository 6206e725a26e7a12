""""My models": the model bundles in the user's models folder, described from their small info files only.

Listing never reads weights (a folder bundle's bundle.json, a single-file bundle's safetensors header), so it stays
fast enough to run whenever the model picker is shown.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from engine.bundle import INFO_NAME, METADATA_KEY, WEIGHTS_NAME, BundleInfo
from engine.errors import UserFacingError
from engine.paths import user_data_dir
from engine.weights import read_safetensors_metadata


@dataclass(frozen=True)
class MyModel:
    path: Path  # the bundle folder or single .safetensors file; load it with ModelSpec(source=Bundle(str(path)))
    name: str
    architecture: str
    labels: tuple[str, ...]
    date: str  # ISO 8601: when it was trained (provenance), else when the bundle was written
    accuracy: float | None  # validation accuracy, 0..1, when training recorded one
    base_model: str  # what training started from ("" when unknown)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def models_dir() -> Path:
    """Where finished models go by default; the model picker lists them under "My models"."""
    return user_data_dir() / "models"


def list_my_models(folder: Path | None = None) -> list[MyModel]:
    """The bundles directly inside `folder` (default: the user's models folder), newest first.

    Damaged or unreadable bundles, half-written temp files and anything that is no bundle are left out.
    """
    folder = Path(folder) if folder is not None else models_dir()
    try:
        children = list(folder.iterdir())
    except OSError:  # no models folder yet (nothing trained), or not readable
        return []
    found: list[tuple[float, MyModel]] = []
    for path in children:
        if path.name.startswith("."):  # atomic writes' temp files and OS litter
            continue
        try:
            described = _describe(path)
        except (OSError, ValueError, UserFacingError):
            continue
        if described is not None:
            found.append(described)
    found.sort(key=lambda item: (item[0], item[1].name), reverse=True)
    return [model for _, model in found]


def describe_my_model(path: str | Path) -> MyModel | None:
    """One bundle as My models lists it (its name is the one training gave it); None for anything that is no bundle."""
    described = _describe(Path(path))
    return described[1] if described is not None else None


def _describe(path: Path) -> tuple[float, MyModel] | None:
    """(sort time, model) for a bundle; None for anything that is no bundle."""
    if path.is_dir():
        info_file = path / INFO_NAME
        if not info_file.is_file() or not (path / WEIGHTS_NAME).is_file():
            return None
        info = BundleInfo.from_json(info_file.read_text(encoding="utf-8"), path)
        written, fallback_name = info_file.stat().st_mtime, path.name  # bundle.json is written last
    elif path.suffix.lower() == ".safetensors" and path.is_file():
        metadata = read_safetensors_metadata(path)  # the header only, not the tensors
        if METADATA_KEY not in metadata:
            return None  # plain weights someone put here: not a model of theirs to list
        info = BundleInfo.from_json(metadata[METADATA_KEY], path)
        written, fallback_name = path.stat().st_mtime, path.stem
    else:
        return None
    provenance = info.provenance
    recorded_date = _text(provenance.get("date"))
    date = recorded_date or dt.datetime.fromtimestamp(written).isoformat(timespec="seconds")
    model = MyModel(
        path=path,
        name=_text(provenance.get("name")) or fallback_name,
        architecture=info.architecture,
        labels=info.labels,
        date=date,
        accuracy=_accuracy(provenance.get("metrics")),
        base_model=_text(provenance.get("base_model")),
    )
    return _timestamp(recorded_date, written), model


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _accuracy(metrics: object) -> float | None:
    value = metrics.get("val_accuracy") if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _timestamp(iso_date: str, fallback: float) -> float:
    """The recorded date as a sortable time (naive dates are local time); the file's time if there is none."""
    try:
        return dt.datetime.fromisoformat(iso_date).timestamp() if iso_date else fallback
    except (ValueError, OverflowError, OSError):
        return fallback
