"""The model a training run starts from: any model source through engine.models' one door, with a new head.

The head is found by name (timm's pretrained_cfg "classifier", or torchvision's last Linear layer), so the quick
method can swap it for an identity to read the backbone's features and put the trained weights back afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.bundle import is_bundle
from engine.catalog import BUILTIN_ARCH
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink
from engine.models import load_model
from engine.preprocess import DataConfig
from engine.specs import Builtin, Bundle, Hub, ModelSpec, RandomInit, WeightsFile, spec_for_name


@dataclass
class StartingModel:
    model: nn.Module  # on the CPU, fp32, with a fresh head of the run's class count
    arch: str
    data_config: DataConfig  # the model's own; the run may change its input size
    description: str  # what it started from, in words (for the report and the bundle)


def start_spec(arch: str, init: str) -> ModelSpec:
    """The ModelSpec a plan's `init` asks for: "pretrained", "builtin", "scratch", or a weights file / bundle path."""
    if init == "pretrained":
        return spec_for_name(arch)
    if init == "builtin":
        if arch and arch.split(".", 1)[0] != BUILTIN_ARCH.split(".", 1)[0]:
            raise UserFacingError(
                f"The built-in weights are EfficientNet-Lite0's and cannot start {arch}.",
                "Choose EfficientNet-Lite0, or start from pretrained weights or from scratch.",
            )
        return ModelSpec(BUILTIN_ARCH, Builtin())
    if init == "scratch":
        return ModelSpec(arch, RandomInit())
    path = Path(init).expanduser()
    if not path.exists():
        raise UserFacingError(
            f"The starting weights {path} do not exist.",
            "Choose pretrained, builtin, scratch, or an existing weights file or model bundle.",
        )
    return ModelSpec(source=Bundle(str(path))) if is_bundle(path) else ModelSpec(arch, WeightsFile(str(path)))


def build_starting_model(
    arch: str, init: str, classes: tuple[str, ...], seed: int, on_event: EventSink, cancel: CancelToken
) -> StartingModel:
    """The starting model with a head for `classes`: a fresh one, or the model's own when it already has them."""
    spec = start_spec(arch, init)
    torch.manual_seed(seed)  # random weights (scratch, new head) come out the same every time: a resumed run matches
    loaded = load_model(spec, device="cpu", precision="fp32", on_event=on_event, cancel=cancel)
    model = loaded.model
    if tuple(loaded.labels) != tuple(classes):  # a model of these very classes goes on learning with its own head
        replace_heads(model, lambda old: _new_linear(old, len(classes)))
    return StartingModel(model, loaded.arch, loaded.data_config, _describe(spec, loaded.arch, loaded.source))


def head_names(model: nn.Module) -> tuple[str, ...]:
    """Qualified names of the classifier layer(s): timm's pretrained_cfg, else the last Linear layer."""
    names = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    if names:
        names = tuple(names) if isinstance(names, (list, tuple)) else (names,)
        if all(_has_submodule(model, n) for n in names):
            return names
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserFacingError(
            f"{type(model).__name__} has no classifier layer Classifier Studio can replace.",
            "Choose another model from the catalog.",
        )
    return (linears[-1],)


def heads(model: nn.Module) -> list[nn.Module]:
    return [model.get_submodule(name) for name in head_names(model)]


def replace_heads(model: nn.Module, make: callable) -> None:
    for name in head_names(model):
        model.set_submodule(name, make(model.get_submodule(name)))
    if hasattr(model, "num_classes"):
        new = heads(model)[0]
        if isinstance(new, nn.Linear):
            model.num_classes = new.out_features


def head_parameter_names(model: nn.Module) -> set[str]:
    return {f"{head}.{param}" for head in head_names(model)
            for param, _ in model.get_submodule(head).named_parameters()}


def _new_linear(old: nn.Module, num_classes: int) -> nn.Linear:
    if not isinstance(old, nn.Linear):
        raise UserFacingError(
            f"This model's classifier is a {type(old).__name__}, which Classifier Studio cannot retrain.",
            "Choose another model from the catalog.",
        )
    return nn.Linear(old.in_features, num_classes)


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:
        return False
    return True


def _describe(spec: ModelSpec, arch: str, source: str) -> str:
    if isinstance(spec.source, RandomInit):
        return f"{arch}, from scratch (random weights)"
    if isinstance(spec.source, (Hub, Builtin)):
        return f"{arch}, pretrained ({source})"
    return f"{arch}, from {source}"
