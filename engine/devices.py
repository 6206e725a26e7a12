"""Which device and precision a model runs on: auto picks CUDA, then Apple MPS, then the CPU."""
from __future__ import annotations

import torch

from engine.errors import UserFacingError
from engine.specs import DEVICE_CHOICES, PRECISIONS, DeviceChoice, DeviceSupport

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # one per PRECISIONS


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    if mps_available():
        devices.insert(0, "mps")
    return devices


def supported_precisions(device: str) -> list[str]:
    """fp32 everywhere; half precisions only where the hardware runs them natively."""
    if device == "cuda":
        return ["fp32", "fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]
    if device == "mps":
        return ["fp32", "fp16"]
    return ["fp32", "bf16"]


def device_name(device: str) -> str:
    if device == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    return "Apple MPS" if device == "mps" else "CPU"


def device_support() -> DeviceSupport:
    """Everything the window's device and precision lists need, as plain values it can use without torch."""
    devices = available_devices()
    return DeviceSupport(
        tuple(devices),
        resolve_device("auto").device,
        {device: tuple(supported_precisions(device)) for device in devices},
        {device: device_name(device) for device in devices},
    )


def resolve_device(device: str = "auto", precision: str = "fp32") -> DeviceChoice:
    if device not in DEVICE_CHOICES:
        raise UserFacingError(f"Unknown device '{device}'.", f"Choose one of: {', '.join(DEVICE_CHOICES)}.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    elif device not in available_devices():
        raise UserFacingError(
            f"The {device.upper()} device is not available on this computer.",
            "Choose 'auto' or 'cpu', or check the GPU driver (see the README's troubleshooting).",
        )
    if precision not in PRECISIONS:
        raise UserFacingError(f"Unknown precision '{precision}'.", "Choose fp32, fp16 or bf16.")
    if precision not in supported_precisions(device):
        raise UserFacingError(
            f"{precision} is not supported on the {device.upper()} device.",
            f"Choose one of: {', '.join(supported_precisions(device))}.",
        )
    return DeviceChoice(device, precision, f"{device_name(device)} · {precision}")
