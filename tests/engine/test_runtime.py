"""Inference backends: ONNX Runtime computes what PyTorch computes on real photos, int8 stays close, and the
choice between backends follows the device and the user's override."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import UserFacingError
from engine.events import Log
from engine.models import ModelSpec, RandomInit, load_model
from engine.specs import LoadedModel
from engine.onnx_session import PROBABILITY_TOLERANCE, OnnxRuntimeBackend, physical_cores, softmax
from engine.predict import Classifier, calibration_images
from engine.preprocess import Preprocessor
from engine.runtime import BACKENDS, PyTorchBackend, create_backend
from engine.specs import builtin_model_spec

PARITY_ARCHS = ("test_resnet", "test_efficientnet", "test_vit", "mobilenetv3_small_100")


def load_untrained(arch: str, **kwargs) -> LoadedModel:
    torch.manual_seed(0)  # the same weights every time, so exports are reused through the module's cache folder
    return load_model(ModelSpec(arch, RandomInit()), device="cpu", **kwargs)


def preprocessed(loaded: LoadedModel, photo_arrays: dict[str, np.ndarray]) -> np.ndarray:
    images = [Image.fromarray(pixels) for pixels in photo_arrays.values()]
    return Preprocessor(loaded.data_config).batch(images).numpy()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def builtin_model(tmp_path_factory) -> LoadedModel:
    """The trained EfficientNet-Lite0 that ships with Classifier Studio: its answers on photos mean something."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLASSIFIER_STUDIO_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        return load_model(builtin_model_spec(), device="cpu")


@pytest.mark.parametrize("arch", PARITY_ARCHS)
def test_onnx_runtime_gives_pytorchs_answers_on_photos(arch, cache_dir, photo_arrays):
    loaded = load_untrained(arch)
    batch = preprocessed(loaded, photo_arrays)
    fast = create_backend(loaded, cache_dir=cache_dir)
    assert isinstance(fast, OnnxRuntimeBackend) and fast.name == "ONNX Runtime" and fast.agreement is None
    expected = softmax(create_backend(loaded, "pytorch").logits(batch))
    got = fast.logits(batch)
    assert got.dtype == np.float32 and got.shape == (len(photo_arrays), loaded.num_classes)
    assert np.array_equal(softmax(got).argmax(1), expected.argmax(1))
    assert np.abs(softmax(got) - expected).max() <= PROBABILITY_TOLERANCE
    one = fast.logits(batch[:1])  # the batch size is free: live recognition sends one frame at a time
    assert np.abs(softmax(one) - expected[:1]).max() <= PROBABILITY_TOLERANCE


def test_the_built_in_model_gives_the_same_classes_in_both_backends(builtin_model, cache_dir, photo_arrays):
    batch = preprocessed(builtin_model, photo_arrays)
    expected = softmax(create_backend(builtin_model, "pytorch").logits(batch))
    got = softmax(create_backend(builtin_model, "onnxruntime", cache_dir=cache_dir).logits(batch))
    assert [builtin_model.labels[i] for i in got.argmax(1)] == [builtin_model.labels[i] for i in expected.argmax(1)]
    assert np.abs(got - expected).max() <= PROBABILITY_TOLERANCE


@pytest.mark.parametrize("calibrate", [True, False], ids=["static", "dynamic"])
def test_int8_is_close_to_full_precision_and_says_how_close(calibrate, builtin_model, cache_dir, photo_arrays):
    batch = preprocessed(builtin_model, photo_arrays)
    events = []
    calibration = list(batch) if calibrate else ()
    quantized = create_backend(builtin_model, int8=True, calibration=calibration, on_event=events.append,
                               cache_dir=cache_dir)
    assert quantized.name == "ONNX Runtime int8"
    agreement = quantized.agreement
    assert agreement is not None and agreement.calibrated == calibrate
    assert agreement.top1 >= 0.8 and agreement.probes == (len(batch) if calibrate else 8)
    assert 0 <= agreement.max_probability_difference < 1
    assert any(isinstance(e, Log) and agreement.describe() in e.text for e in events)
    assert "% of" in agreement.describe()
    probabilities = softmax(quantized.logits(batch))
    assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    expected = softmax(create_backend(builtin_model, "pytorch").logits(batch))
    assert np.mean(probabilities.argmax(1) == expected.argmax(1)) >= 0.75  # photos keep their top class


def test_pytorch_is_used_when_asked_for_and_int8_then_only_costs_a_note(cache_dir):
    loaded = load_untrained("test_efficientnet")
    events = []
    backend = create_backend(loaded, "pytorch", int8=True, on_event=events.append, cache_dir=cache_dir)
    assert isinstance(backend, PyTorchBackend) and backend.name == "PyTorch" and backend.agreement is None
    assert any(isinstance(e, Log) and "int8" in e.text for e in events)
    logits = backend.logits(np.zeros((2, *loaded.data_config.input_size), np.float32))
    assert logits.shape == (2, loaded.num_classes) and logits.dtype == np.float32


def test_auto_keeps_pytorch_for_a_bf16_choice_on_the_cpu(cache_dir):
    loaded = load_untrained("test_efficientnet", precision="bf16")
    backend = create_backend(loaded, "auto", cache_dir=cache_dir)
    assert backend.name == "PyTorch"
    logits = backend.logits(np.zeros((1, *loaded.data_config.input_size), np.float32))
    assert logits.dtype == np.float32  # whatever the model's precision, callers get float32


def test_onnx_runtime_runs_an_fp32_copy_of_a_bf16_model_and_leaves_the_model_as_it_is(cache_dir, photo_arrays):
    loaded = load_untrained("test_efficientnet", precision="bf16")
    backend = create_backend(loaded, "onnxruntime", cache_dir=cache_dir)
    assert backend.name == "ONNX Runtime"
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    batch = preprocessed(loaded, photo_arrays)
    got = softmax(backend.logits(batch))
    expected = softmax(create_backend(loaded, "pytorch").logits(batch))
    assert np.abs(got - expected).max() < 0.05  # bf16 PyTorch is the rougher of the two


def test_thread_count_follows_the_machine_or_the_caller(cache_dir):
    loaded = load_untrained("test_efficientnet")
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    default = create_backend(loaded, cache_dir=cache_dir)
    assert default.session.get_session_options().intra_op_num_threads == physical_cores()
    capped = create_backend(loaded, threads=1, cache_dir=cache_dir)
    assert capped.session.get_session_options().intra_op_num_threads == 1


def test_an_unknown_backend_name_says_which_exist():
    with pytest.raises(UserFacingError) as error:
        create_backend(load_untrained("test_efficientnet"), "tensorrt")
    assert all(name in error.value.hint for name in BACKENDS)


def test_the_live_copy_gives_the_same_answers_with_threads_that_sleep_when_idle(cache_dir, photo_arrays):
    loaded = load_untrained("test_efficientnet")
    batch = preprocessed(loaded, photo_arrays)
    fast = create_backend(loaded, cache_dir=cache_dir)
    live = fast.for_live()
    options = live.session.get_session_options()
    assert live is not fast and options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert fast.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert live.name == fast.name and live.onnx_file == fast.onnx_file
    assert np.array_equal(live.logits(batch), fast.logits(batch))
    eager = create_backend(loaded, "pytorch")
    assert eager.for_live() is eager  # torch's threads are per process: the live pipeline sets them

    classifier = Classifier(loaded, fast)
    assert classifier.for_live().backend.session is not fast.session
    assert Classifier(loaded, eager).for_live().backend is eager


def test_int8_calibration_images_come_from_the_top_of_recent_folders(tmp_path, photo_files):
    preprocessor = Preprocessor(load_untrained("test_efficientnet").data_config)
    folder = photo_files[0].parent
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    nested = folder / "nested"
    nested.mkdir()
    Image.new("RGB", (64, 64), "red").save(nested / "red.png")
    missing = tmp_path / "a folder since deleted"

    images = calibration_images([missing, folder], preprocessor, limit=16)

    assert len(images) == len(photo_files)  # the broken file and the nested one are left out
    expected = Preprocessor(preprocessor.config).batch([Image.open(p).convert("RGB") for p in sorted(photo_files)])
    assert np.allclose(np.stack(images), expected.numpy(), atol=1e-6)
    assert len(calibration_images([folder], preprocessor, limit=2)) == 2
