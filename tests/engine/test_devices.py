"""Device and precision choices: auto picks the best available; impossible choices are explained."""
from __future__ import annotations

import pytest
import torch

from engine.devices import available_devices, resolve_device, supported_precisions
from engine.errors import UserFacingError
from engine.models import ModelSpec, RandomInit, load_model


def test_auto_picks_cuda_then_mps_then_cpu():
    choice = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "mps" if "mps" in available_devices() else "cpu"
    assert choice.device == expected and choice.precision == "fp32"
    assert choice.description.endswith("· fp32")


def test_unavailable_device_and_precision_are_explained():
    if not torch.cuda.is_available():
        with pytest.raises(UserFacingError, match="CUDA device is not available"):
            resolve_device("cuda")
    with pytest.raises(UserFacingError, match="fp16 is not supported on the CPU"):
        resolve_device("cpu", "fp16")
    with pytest.raises(UserFacingError, match="Unknown device"):
        resolve_device("tpu")


def test_bf16_on_cpu_runs_the_model_in_bf16():
    assert "bf16" in supported_precisions("cpu")
    loaded = load_model(ModelSpec("test_efficientnet", RandomInit()), device="cpu", precision="bf16")
    assert loaded.device.description == "CPU · bf16"
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
