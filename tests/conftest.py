"""Shared fixtures: real photo files and small self-made models saved as bundles (no network anywhere)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Qt tests run without a screen; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TINY_ARCH = "test_efficientnet"


@pytest.fixture(scope="session")
def qapp_cls():
    """pytest-qt's application is the app's own class, as users run it."""
    from gui.application import StudioApplication

    return StudioApplication  # timm's tiny test architecture: builds and runs in milliseconds


@pytest.fixture(scope="session")
def shared_onnx_cache(tmp_path_factory) -> Path:
    """One ONNX Runtime export cache for the whole run: every window that loads the built-in model would otherwise
    export it again (~10 s each). Tests of the cache itself pass their own cache_dir."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def isolated_user_folders(tmp_path_factory, monkeypatch, shared_onnx_cache):
    """Every test gets empty caches and config folders and a Hub that cannot be reached by accident."""
    home = tmp_path_factory.mktemp("home")
    app_data = home / "data" / "Classifier Studio"  # engine.paths.user_data_dir() under this XDG_DATA_HOME
    app_data.mkdir(parents=True)
    (app_data / "onnx-cache").symlink_to(shared_onnx_cache, target_is_directory=True)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))  # logs
    monkeypatch.delenv("CLASSIFIER_STUDIO_DATA_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return home


@pytest.fixture(scope="module")
def one_torch_thread():
    """A test module's tiny training runs on one intra-op thread: on shared two-core runners OpenMP's spin-waiting
    threads can make them ten to thirty times slower. (Use with pytest.mark.usefixtures.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _photos() -> dict[str, np.ndarray]:
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee(), "astronaut": data.astronaut(), "rocket": data.rocket()}


@pytest.fixture(scope="session")
def photo_arrays() -> dict[str, np.ndarray]:
    return _photos()


@pytest.fixture
def photo_files(tmp_path, photo_arrays) -> list[Path]:
    """Real photographs as JPEG, PNG and WebP files."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for (name, pixels), suffix in zip(photo_arrays.items(), (".jpg", ".png", ".webp", ".jpg")):
        path = folder / f"{name}{suffix}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def make_bundle(folder: Path, arch: str = TINY_ARCH, labels: tuple[str, ...] = ("cat", "dog", "bird"),
                seed: int = 0) -> Path:
    """A real bundle of a small untrained model with its own labels, written through the product's own code."""
    import timm
    from timm.data import resolve_data_config

    from engine.bundle import BundleInfo, save_bundle
    from engine.preprocess import DataConfig

    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=len(labels))
    info = BundleInfo(arch, labels, DataConfig.from_dict(resolve_data_config({}, model=model)), {"made_by": "tests"})
    return save_bundle(folder, model.state_dict(), info)


@pytest.fixture
def tiny_bundle(tmp_path) -> Path:
    return make_bundle(tmp_path / "tiny_bundle")
