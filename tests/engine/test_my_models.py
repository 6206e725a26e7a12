"""My models: the bundles in the user's models folder, listed newest first from their info files alone."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import timm
from safetensors.torch import save_file
from timm.data import resolve_data_config

from engine.bundle import INFO_NAME, WEIGHTS_NAME, BundleInfo, save_bundle
from engine.my_models import MyModel, list_my_models
from engine.paths import DATA_DIR_ENV
from engine.preprocess import DataConfig
from engine.training.run import models_dir
from tests.conftest import TINY_ARCH, make_bundle


def save_my_model(
    path: Path,
    name: str,
    date: str,
    accuracy: float | None = 0.95,
    labels: tuple[str, ...] = ("cat", "dog", "bird"),
    base_model: str = "EfficientNet-Lite0 (built in)",
) -> Path:
    """A real bundle of the tiny test model with the provenance the trainer records (folder, or a .safetensors)."""
    model = timm.create_model(TINY_ARCH, pretrained=False, num_classes=len(labels))
    config = DataConfig.from_dict(resolve_data_config({}, model=model))
    metrics = {"val_accuracy": accuracy, "val_loss": 0.2} if accuracy is not None else {}
    provenance = {"name": name, "date": date, "base_model": base_model, "metrics": metrics, "made_by": "tests"}
    return save_bundle(path, model.state_dict(), BundleInfo(TINY_ARCH, labels, config, provenance))


@pytest.fixture
def my_models_folder(tmp_path, monkeypatch) -> Path:
    """The user's models folder, inside this test's data folder."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    folder = models_dir()
    folder.mkdir(parents=True)
    return folder


def test_lists_folder_and_file_bundles_newest_first_with_their_details(my_models_folder):
    save_my_model(my_models_folder / "flowers", "Flowers", "2024-03-01T09:00:00", 0.81)
    save_my_model(my_models_folder / "birds.safetensors", "Garden birds", "2024-05-02T18:30:00", 0.95,
                  labels=("robin", "wren"), base_model="resnet18.a1_in1k")
    save_my_model(my_models_folder / "parts", "Machine parts", "2024-04-15T12:00:00", None)

    models = list_my_models()  # the default folder is the user's models folder

    assert [m.name for m in models] == ["Garden birds", "Machine parts", "Flowers"]
    assert models[0] == MyModel(
        path=my_models_folder / "birds.safetensors",
        name="Garden birds",
        architecture=TINY_ARCH,
        labels=("robin", "wren"),
        date="2024-05-02T18:30:00",
        accuracy=0.95,
        base_model="resnet18.a1_in1k",
    )
    assert models[0].num_classes == 2
    assert models[1].accuracy is None  # no validation accuracy recorded
    assert models[2].path == my_models_folder / "flowers"
    assert models[2].labels == ("cat", "dog", "bird")


def test_bundles_without_provenance_use_their_file_name_and_time(my_models_folder):
    folder_bundle = make_bundle(my_models_folder / "older")
    file_bundle = make_bundle(my_models_folder / "newer.safetensors")
    os.utime(folder_bundle / INFO_NAME, (1_700_000_000, 1_700_000_000))
    os.utime(file_bundle, (1_700_100_000, 1_700_100_000))

    newer, older = list_my_models(my_models_folder)

    assert (newer.name, older.name) == ("newer", "older")
    assert newer.date == dt.datetime.fromtimestamp(1_700_100_000).isoformat(timespec="seconds")
    assert older.date == dt.datetime.fromtimestamp(1_700_000_000).isoformat(timespec="seconds")
    assert (newer.accuracy, newer.base_model) == (None, "")


def test_damaged_bundles_and_other_files_are_left_out(my_models_folder, tmp_path):
    good = save_my_model(my_models_folder / "good", "Good", "2024-01-01T00:00:00")
    (my_models_folder / "garbage-json").mkdir()
    (my_models_folder / "garbage-json" / INFO_NAME).write_text("{ not json", encoding="utf-8")
    (my_models_folder / "garbage-json" / WEIGHTS_NAME).write_bytes((good / WEIGHTS_NAME).read_bytes())
    no_weights = save_my_model(my_models_folder / "no-weights", "No weights", "2024-02-01T00:00:00")
    (no_weights / WEIGHTS_NAME).unlink()
    newer_schema = save_my_model(my_models_folder / "from-the-future", "Future", "2024-03-01T00:00:00")
    info = json.loads((newer_schema / INFO_NAME).read_text(encoding="utf-8"))
    (newer_schema / INFO_NAME).write_text(json.dumps({**info, "schema_version": 99}), encoding="utf-8")
    (my_models_folder / "truncated.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    save_file({"weight": timm.create_model(TINY_ARCH).conv_stem.weight.detach()},
              str(my_models_folder / "plain-weights.safetensors"))
    (my_models_folder / "holiday photos").mkdir()
    (my_models_folder / "notes.txt").write_text("my models", encoding="utf-8")
    (my_models_folder / ".birds.safetensors.x1y2.tmp").write_bytes(b"half written")

    assert [m.path for m in list_my_models(my_models_folder)] == [good]


def test_no_models_folder_yet_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "fresh install"))
    assert list_my_models() == []


def test_listing_reads_the_info_not_the_weights(my_models_folder):
    """What keeps listing fast: weights are only read when a model is loaded (which reports damage then)."""
    bundle = save_my_model(my_models_folder / "big", "Big", "2024-01-01T00:00:00")
    (bundle / WEIGHTS_NAME).write_bytes(b"not read by the listing")
    assert [m.name for m in list_my_models(my_models_folder)] == ["Big"]


def test_the_built_in_model_is_not_listed_among_the_users_own(my_models_folder):
    from engine.builtin import ensure_builtin_bundle

    ensure_builtin_bundle()
    assert list_my_models() == []
