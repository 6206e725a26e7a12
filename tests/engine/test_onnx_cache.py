"""The ONNX export cache: exported once, loaded after, rebuilt when damaged or stale, and never in the user's way when
a model cannot run in ONNX Runtime."""
from __future__ import annotations

import copy
import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.devices import resolve_device
from engine.events import Log, Progress
from engine.models import ModelSpec, RandomInit, load_model
from engine.specs import LoadedModel
from engine import onnx_cache
from engine.onnx_cache import cache_file
from engine.onnx_session import PROBABILITY_TOLERANCE, OnnxRuntimeBackend, softmax
from engine.preprocess import DataConfig
from engine.runtime import PyTorchBackend, create_backend
from engine.weights import weights_digest

ARCH = "test_efficientnet"


def exported(events: list) -> bool:
    return any(isinstance(e, Progress) and "Preparing the model for fast inference" in e.what for e in events)


def notes(events: list, level: str) -> list[str]:
    return [e.text for e in events if isinstance(e, Log) and e.level == level]


@dataclasses.dataclass
class FirstUse:
    loaded: LoadedModel
    folder: Path
    file: Path
    events: list


@pytest.fixture(scope="module")
def first_use(tmp_path_factory) -> FirstUse:
    """One export made by a first create_backend; tests copy its folder rather than exporting again."""
    torch.manual_seed(0)
    loaded = load_model(ModelSpec(ARCH, RandomInit()), device="cpu")
    folder = tmp_path_factory.mktemp("first-use")
    events = []
    backend = create_backend(loaded, on_event=events.append, cache_dir=folder)
    return FirstUse(loaded, folder, backend.onnx_file, events)


@pytest.fixture
def cache(first_use, tmp_path) -> Path:
    return Path(shutil.copytree(first_use.folder, tmp_path / "cache"))


@pytest.fixture
def probe(first_use) -> np.ndarray:
    generator = np.random.default_rng(1)
    return generator.uniform(-2, 2, (3, *first_use.loaded.data_config.input_size)).astype(np.float32)


def changed_weights(loaded: LoadedModel, seed: int = 1) -> LoadedModel:
    model = copy.deepcopy(loaded.model)
    head = model.get_classifier().weight
    with torch.no_grad():  # a clearly different classifier, as after fine-tuning
        head.add_(torch.randn(head.shape, generator=torch.Generator().manual_seed(seed)))
    return dataclasses.replace(loaded, model=model)


def assert_matches_pytorch(backend, loaded: LoadedModel, batch: np.ndarray) -> None:
    expected = softmax(PyTorchBackend(loaded).logits(batch))
    got = softmax(backend.logits(batch))
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    assert np.abs(got - expected).max() <= PROBABILITY_TOLERANCE


def test_the_first_use_exports_with_progress_and_the_next_loads_the_cached_file(first_use, cache, probe):
    assert exported(first_use.events) and first_use.file.is_file()
    assert [e.done for e in first_use.events if isinstance(e, Progress)] == [0, 1]
    cached = cache / first_use.file.name
    written = cached.stat().st_mtime_ns
    events = []
    backend = create_backend(first_use.loaded, on_event=events.append, cache_dir=cache)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.onnx_file == cached
    assert not exported(events) and not notes(events, "warning")
    assert cached.stat().st_mtime_ns == written and sorted(p.name for p in cache.iterdir()) == [cached.name]
    assert_matches_pytorch(backend, first_use.loaded, probe)


def test_changed_weights_get_their_own_export(first_use, cache, probe):
    retrained = changed_weights(first_use.loaded)
    assert weights_digest(retrained.model) != weights_digest(first_use.loaded.model)
    events = []
    backend = create_backend(retrained, on_event=events.append, cache_dir=cache)
    assert exported(events) and backend.onnx_file != cache / first_use.file.name
    assert len(list(cache.glob("*.onnx"))) == 2
    assert_matches_pytorch(backend, retrained, probe)  # the new weights' answers, not the old file's


def test_the_cache_keeps_within_its_budget_by_deleting_what_was_used_least_recently(first_use, cache, monkeypatch):
    first = cache / first_use.file.name
    monkeypatch.setattr(onnx_cache, "CACHE_BUDGET_BYTES", int(first.stat().st_size * 2.5))  # room for two exports
    written = first.stat().st_mtime_ns
    os.utime(first, ns=(0, written))  # as if unused for years
    second = create_backend(changed_weights(first_use.loaded, seed=1), cache_dir=cache).onnx_file
    assert sorted(cache.glob("*.onnx")) == sorted([first, second])  # within the budget: nothing deleted
    create_backend(first_use.loaded, cache_dir=cache)  # the first model used again: now the second is the oldest
    assert first.stat().st_mtime_ns == written  # only its access time marks the use: quick start's records hold
    leftover = cache / f".{second.name}.killed.tmp"  # what an export killed midway leaves
    leftover.write_bytes(b"half an export")
    os.utime(leftover, (0, 0))

    events = []
    third = create_backend(changed_weights(first_use.loaded, seed=2), on_event=events.append, cache_dir=cache)
    assert sorted(cache.glob("*.onnx")) == sorted([first, third.onnx_file])
    assert not leftover.exists()
    assert any("Deleted from the ONNX cache" in text and second.name in text for text in notes(events, "info"))


def test_the_key_follows_weights_architecture_and_input_size(first_use, tmp_path):
    model = first_use.loaded.model
    name = cache_file(tmp_path, ARCH, model, (3, 160, 160))
    assert name == cache_file(tmp_path, ARCH, copy.deepcopy(model), (3, 160, 160))  # same bytes, same file
    assert name.name.startswith(ARCH) and name.suffix == ".onnx"
    assert name != cache_file(tmp_path, ARCH, model, (3, 192, 192))
    assert name != cache_file(tmp_path, "another_arch", model, (3, 160, 160))
    assert weights_digest(copy.deepcopy(model).to(torch.bfloat16)) != weights_digest(model)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "another model's export"])
def test_a_damaged_or_stale_cache_file_is_detected_and_rebuilt(damage, first_use, cache, probe):
    loaded = first_use.loaded
    target = cache / first_use.file.name
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "garbage":
        target.write_bytes(np.random.default_rng(0).bytes(4096))
    else:  # a valid ONNX file computing something else, where this model's export belongs
        loaded = changed_weights(loaded)
        target = cache_file(cache, ARCH, loaded.model, loaded.data_config.input_size)
        shutil.copyfile(cache / first_use.file.name, target)
    events = []
    backend = create_backend(loaded, on_event=events.append, cache_dir=cache)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.onnx_file == target
    assert any("failed its check" in text for text in notes(events, "info")) and exported(events)
    assert_matches_pytorch(backend, loaded, probe)
    events.clear()
    create_backend(loaded, on_event=events.append, cache_dir=cache)
    assert not exported(events)  # the rebuilt file is good for next time
    assert not list(cache.glob("*.tmp"))


class CountsItsCalls(torch.nn.Module):
    """Keeps Python state between calls, which no static graph can hold: the export disagrees with it."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(x.mean(dim=(2, 3))) * self.calls


class BranchesOnPixelValues(torch.nn.Module):
    """Python control flow on tensor data (.item()): the exporter rejects it."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        return self.head(pooled) if pooled.sum().item() > 0 else -self.head(pooled)


def as_loaded(model: torch.nn.Module) -> LoadedModel:
    labels = ("a", "b", "c", "d")
    return LoadedModel(model.eval(), type(model).__name__, labels, DataConfig((3, 16, 16)), resolve_device("cpu"),
                       type(model).__name__, "tests")


@pytest.mark.parametrize("model_type", [BranchesOnPixelValues, CountsItsCalls], ids=["rejected", "disagrees"])
@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
def test_a_model_onnx_runtime_cannot_run_falls_back_to_pytorch_with_a_note(model_type, backend, tmp_path):
    torch.manual_seed(0)
    loaded = as_loaded(model_type())
    events = []
    chosen = create_backend(loaded, backend, on_event=events.append, cache_dir=tmp_path)
    assert isinstance(chosen, PyTorchBackend) and chosen.name == "PyTorch"
    warnings = notes(events, "warning")
    assert len(warnings) == 1 and "Running it in PyTorch" in warnings[0]
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.tmp"))
    assert chosen.logits(np.ones((2, 3, 16, 16), np.float32)).shape == (2, 4)
    events.clear()
    again = create_backend(loaded, backend, on_event=events.append, cache_dir=tmp_path)
    assert isinstance(again, PyTorchBackend) and len(notes(events, "warning")) == 1
    assert not [e for e in events if isinstance(e, Progress)]  # the verdict is remembered: no second export
