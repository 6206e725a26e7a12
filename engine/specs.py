"""What can be asked of the engine, as plain values: which model (ModelSpec and its sources), what its input is
(DataConfig), how to run it (InferenceChoice), which devices there are (DeviceSupport), and a model once loaded
(LoadedModel, on its DeviceChoice).

Nothing here imports torch or timm (a test keeps it so): the window uses these words before the engine thread
has imported torch, so it shows in a fraction of a second.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from engine.catalog import BUILTIN_ARCH, find_entry
from engine.clip_catalog import DEFAULT_PROMPT

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "fp16", "bf16")
BACKENDS = ("auto", "pytorch", "onnxruntime")
BUILTIN_NAME = "EfficientNet-Lite0 (built in · offline)"
DEFAULT_CROP_PCT = 0.875  # timm's default when a config has none


@dataclass(frozen=True)
class DataConfig:
    """What a model expects: timm's data config, as plain values (travels inside bundles as JSON)."""

    input_size: tuple[int, int, int]  # (C, H, W)
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    crop_pct: float = DEFAULT_CROP_PCT
    crop_mode: str = "center"

    @classmethod
    def from_dict(cls, config: dict) -> "DataConfig":
        return cls(
            input_size=tuple(int(v) for v in config["input_size"]),
            interpolation=str(config.get("interpolation") or "bicubic"),
            mean=tuple(float(v) for v in config.get("mean", cls.mean)),
            std=tuple(float(v) for v in config.get("std", cls.std)),
            crop_pct=float(config.get("crop_pct") or DEFAULT_CROP_PCT),
            crop_mode=str(config.get("crop_mode") or "center"),
        )

    def to_dict(self) -> dict:
        return {
            "input_size": list(self.input_size),
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
            "crop_pct": self.crop_pct,
            "crop_mode": self.crop_mode,
        }


@dataclass(frozen=True)
class Hub:
    """Pretrained weights from the Hugging Face Hub (timm's checkpoint for the architecture and tag)."""


@dataclass(frozen=True)
class WeightsFile:
    """A local .safetensors/.pth/.pt/.bin file for the architecture that ModelSpec.arch names."""

    path: str


@dataclass(frozen=True)
class Bundle:
    """A Classifier Studio model bundle (folder or single .safetensors); it names its own architecture."""

    path: str


@dataclass(frozen=True)
class Builtin:
    """The starter model shipped inside Classifier Studio (EfficientNet-Lite0, ImageNet-1k): needs no network."""


@dataclass(frozen=True)
class RandomInit:
    """Untrained weights: for training from scratch, tests and benchmarks."""


@dataclass(frozen=True)
class ZeroShot:
    """A CLIP model (ModelSpec.arch "clip/ViT-B-32/openai") that sorts images into the classes the user names.

    `path`: a local open_clip checkpoint for that model; empty means its weights from the Hugging Face Hub.
    `prompt`: the sentence each class name is put in, where its {} is.
    """

    classes: tuple[str, ...]
    path: str = ""
    prompt: str = DEFAULT_PROMPT


ModelSource = Union[Hub, WeightsFile, Bundle, Builtin, RandomInit, ZeroShot]


@dataclass(frozen=True)
class ModelSpec:
    # timm name ("resnet50", "resnet50.a1_in1k"), "torchvision/alexnet" or "clip/ViT-B-32/openai"; ignored for bundles
    arch: str = ""
    source: ModelSource = field(default_factory=Hub)


def builtin_model_spec() -> ModelSpec:
    """The starter model as a spec for `load_model`, which converts it first if needed (once, about a second)."""
    return ModelSpec(BUILTIN_ARCH, Builtin())


def spec_for_name(name: str) -> ModelSpec:
    """What a catalog row or a typed model name loads: the built-in bundle for the built-in entry, else Hub weights."""
    entry = find_entry(name)
    if entry is not None and entry.source == "builtin":
        return ModelSpec(entry.arch, Builtin())
    return ModelSpec(entry.arch if entry else name.strip(), Hub())


@dataclass(frozen=True)
class InferenceChoice:
    """How the user asked for models to run: PyTorch's device and precision, the backend, and the int8 switch."""

    device: str = "auto"  # one of DEVICE_CHOICES
    precision: str = "fp32"  # one of PRECISIONS
    backend: str = "auto"  # one of BACKENDS
    int8: bool = False


@dataclass(frozen=True)
class DeviceSupport:
    """The devices this computer has and what each runs (engine.devices.device_support finds out, with torch)."""

    devices: tuple[str, ...]  # the available ones, e.g. ("cuda", "cpu")
    auto: str  # the device "auto" picks
    precisions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per device, fp32 first
    names: dict[str, str] = field(default_factory=dict)  # per device, e.g. "CUDA (NVIDIA H100)"

    def resolve(self, device: str) -> str:
        return self.auto if device == "auto" else device

    def description(self, device: str, precision: str) -> str:
        """What the status bar shows, as engine.devices.DeviceChoice.description: e.g. "CPU · fp32"."""
        device = self.resolve(device)
        return f"{self.names.get(device, device.upper())} · {precision}"


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu", "cuda", "mps"
    precision: str  # "fp32", "fp16", "bf16"
    description: str  # what the status bar shows, e.g. "CUDA (NVIDIA H100) · fp16"

    @property
    def dtype(self) -> torch.dtype:
        from engine.devices import DTYPES  # imports torch, which only PyTorch's paths ask for

        return DTYPES[self.precision]


@dataclass
class LoadedModel:
    """A model ready to run, with its labels and data config, so no caller guesses a mean/std or a crop."""

    model: torch.nn.Module | None  # in eval mode, on `device`, in its precision; None when served by a quick start
    arch: str
    labels: tuple[str, ...]
    data_config: DataConfig
    device: DeviceChoice
    name: str  # what the status bar shows
    source: str  # where the weights came from, in words
    weights_files: tuple[str, ...] = ()  # the files the weights were read from (none for untrained weights)

    @property
    def num_classes(self) -> int:
        return len(self.labels)
