"""Classifier Studio's model bundle: weights plus everything needed to use them (architecture, labels, preprocessing).

Two forms, same content:
- a folder holding `model.safetensors` and `bundle.json` (what the training wizard writes);
- a single `.safetensors` file whose metadata carries the same JSON under `classifier_studio_bundle`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserFacingError
from engine.files import atomic_path, write_text_atomically
from engine.specs import DataConfig
from engine.weights import read_safetensors_metadata, read_state_dict

if TYPE_CHECKING:  # torch is imported by whoever has tensors: the window reads bundles' info without it
    import torch

BUNDLE_FORMAT = "classifier-studio-bundle"
# Bump when a field changes meaning or a new field becomes required; readers refuse newer versions.
SCHEMA_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
INFO_NAME = "bundle.json"
METADATA_KEY = "classifier_studio_bundle"


@dataclass(frozen=True)
class BundleInfo:
    architecture: str  # timm name, e.g. "resnet18" (or "torchvision/alexnet")
    labels: tuple[str, ...]
    data_config: DataConfig
    provenance: dict = field(default_factory=dict)  # where the weights came from: base model, dataset, licence, date

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": BUNDLE_FORMAT,
                "schema_version": SCHEMA_VERSION,
                "architecture": self.architecture,
                "num_classes": len(self.labels),
                "labels": list(self.labels),
                "data_config": self.data_config.to_dict(),
                "provenance": self.provenance,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, origin: Path) -> "BundleInfo":
        try:
            raw = json.loads(text)
            if raw.get("format") != BUNDLE_FORMAT:
                raise ValueError("not a Classifier Studio bundle")
            if int(raw.get("schema_version", 0)) > SCHEMA_VERSION:
                raise UserFacingError(
                    f"{origin.name} was made by a newer Classifier Studio.", "Update Classifier Studio to open it."
                )
            return cls(
                architecture=str(raw["architecture"]),
                labels=tuple(str(label) for label in raw["labels"]),
                data_config=DataConfig.from_dict(raw["data_config"]),
                provenance=dict(raw.get("provenance") or {}),
            )
        except UserFacingError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserFacingError(
                f"{origin.name} is not a valid model bundle ({exc}).",
                "Choose a bundle written by Classifier Studio, or load the weights file with its architecture.",
            ) from exc


def is_bundle(path: str | Path) -> bool:
    path = Path(path)
    if path.is_dir():
        return (path / INFO_NAME).is_file()
    if path.suffix.lower() == ".safetensors" and path.is_file():
        try:
            return METADATA_KEY in read_safetensors_metadata(path)
        except UserFacingError:
            return False
    return False


def save_bundle(path: str | Path, state_dict: dict[str, torch.Tensor], info: BundleInfo) -> Path:
    """Write a bundle atomically: to `path/` as a folder, or to `path` itself if it ends in .safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    if path.suffix.lower() == ".safetensors":
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={METADATA_KEY: info.to_json()})
        return path
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    write_text_atomically(path / INFO_NAME, info.to_json())  # written last: its presence marks a whole bundle
    return path


def read_bundle(path: str | Path) -> tuple[BundleInfo, dict[str, torch.Tensor]]:
    path = Path(path)
    if path.is_dir():
        info_file, weights_file = path / INFO_NAME, path / WEIGHTS_NAME
        if not info_file.is_file() or not weights_file.is_file():
            raise UserFacingError(
                f"The folder {path} is not a model bundle (it needs {INFO_NAME} and {WEIGHTS_NAME}).",
                "Choose a bundle folder written by Classifier Studio.",
            )
        info = BundleInfo.from_json(info_file.read_text(encoding="utf-8"), path)
        return info, read_state_dict(weights_file)
    metadata = read_safetensors_metadata(path)
    if METADATA_KEY not in metadata:
        raise UserFacingError(
            f"{path.name} holds weights but no bundle information.",
            "Load it as a weights file and choose its architecture.",
        )
    return BundleInfo.from_json(metadata[METADATA_KEY], path), read_state_dict(path)
