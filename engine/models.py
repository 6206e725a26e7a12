"""One door in for models: `load_model(ModelSpec(arch, source))` gives a ready model, whatever the weights' source."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import timm
import torch
from timm.data import ImageNetInfo, infer_imagenet_subset, resolve_data_config

from engine.bundle import is_bundle, read_bundle
from engine.catalog import TORCHVISION_PREFIX, suggest_architectures
from engine.clip_catalog import is_clip_arch, zero_shot_name
from engine.devices import resolve_device
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, ignore_events
from engine.hub import download_hub_weights, download_url
from engine.preprocess import DataConfig
from engine.specs import Builtin, Bundle, Hub, LoadedModel, ModelSpec, RandomInit, WeightsFile, ZeroShot
from engine.weights import read_state_dict

# torchvision checkpoints timm lacks: (builder name, weights URL, data config of torchvision's eval transform).
TORCHVISION_MODELS = {
    "alexnet": (
        "alexnet",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        DataConfig((3, 224, 224), "bilinear", crop_pct=224 / 256),
    ),
}


@dataclass
class _Built:
    model: torch.nn.Module
    arch: str
    labels: tuple[str, ...]
    data_config: DataConfig
    source: str
    name: str = ""  # a bundle's own display name, from its provenance
    files: tuple[str, ...] = ()  # what the weights were read from: a changed file means changed weights


def load_model(
    spec: ModelSpec,
    device: str = "auto",
    precision: str = "fp32",
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
) -> LoadedModel:
    cancel = cancel or CancelToken()
    choice = resolve_device(device, precision)
    built = _LOADERS[type(spec.source)](spec, on_event, cancel)
    cancel.check()
    on_event(Log("info", f"Moving {built.arch} to {choice.description}"))
    model = built.model.to(device=choice.device, dtype=choice.dtype).eval()
    name = built.name or (Path(spec.source.path).stem if isinstance(spec.source, Bundle) else built.arch)
    return LoadedModel(model, built.arch, built.labels, built.data_config, choice, name, built.source, built.files)


def imagenet_labels(num_classes: int) -> tuple[str, ...] | None:
    """Class names from timm's own ImageNet label info (1k, 12k, 21k/22k heads), without the network."""
    subset = infer_imagenet_subset({"num_classes": num_classes})
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    return tuple(info.index_to_description(i) for i in range(num_classes))


def default_labels(num_classes: int) -> tuple[str, ...]:
    return imagenet_labels(num_classes) or tuple(f"class {i}" for i in range(num_classes))


def create_architecture(arch: str, num_classes: int | None = None, **timm_kwargs) -> tuple[torch.nn.Module, DataConfig]:
    """An untrained model of `arch` and its data config; a clear error for unknown names."""
    if arch.startswith(TORCHVISION_PREFIX):
        import torchvision

        builder, _, config = _torchvision_entry(arch)
        return torchvision.models.get_model(builder, weights=None, num_classes=num_classes or 1000), config
    _check_timm_name(arch)
    kwargs = dict(timm_kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = timm.create_model(arch, **kwargs)
    return model, DataConfig.from_dict(resolve_data_config({}, model=model))


def _load_random(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    model, config = create_architecture(_require_arch(spec), pretrained=False)
    return _Built(model, spec.arch, default_labels(_num_classes(model)), config, "untrained weights")


def _load_hub(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    arch = _require_arch(spec)
    if arch.startswith(TORCHVISION_PREFIX):
        _, url, _ = _torchvision_entry(arch)
        file = download_url(url, Path(torch.hub.get_dir()) / "checkpoints", on_event, cancel)
        built = _load_file(ModelSpec(arch, WeightsFile(str(file))), on_event, cancel)
        built.source = "torchvision (ImageNet-1k)"
        return built
    _check_timm_name(arch)
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise UserFacingError(f"timm has no pretrained weights for {arch}.", "Load a weights file for it instead.")
    if cfg.hf_hub_id:
        file = download_hub_weights(cfg.hf_hub_id, on_event, cancel)
        source = f"Hugging Face Hub ({cfg.hf_hub_id})"
    else:
        file = download_url(cfg.url, Path(torch.hub.get_dir()) / "checkpoints", on_event, cancel)
        source = cfg.url
    cancel.check()
    on_event(Log("info", f"Loading {arch} weights"))
    # timm's own loader applies the checkpoint's conversions (filter_fn); it reads with weights_only=True.
    model, config = create_architecture(arch, pretrained=True, pretrained_cfg_overlay={"file": str(file)})
    return _Built(model, arch, default_labels(_num_classes(model)), config, source, files=(str(file),))


def _load_file(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    path = Path(spec.source.path)
    if is_bundle(path):
        return _load_bundle(ModelSpec(source=Bundle(str(path))), on_event, cancel)
    arch = _require_arch(spec, f"Choose the architecture that {path.name} was trained for (e.g. resnet50).")
    on_event(Log("info", f"Reading {path.name}"))
    state = read_state_dict(path)
    model, config = create_architecture(arch, pretrained=False)
    heads = _classifier_out_features(model, state)
    if heads is not None and heads != _num_classes(model):
        model, config = create_architecture(arch, num_classes=heads, pretrained=False)
    _fit_weights(model, state, f"{path.name} does not fit {arch}")
    return _Built(model, arch, default_labels(_num_classes(model)), config, f"file {path}", files=(str(path),))


def _load_bundle(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    path = Path(spec.source.path)
    on_event(Log("info", f"Reading bundle {path.name}"))
    info, state = read_bundle(path)
    model, _ = create_architecture(info.architecture, num_classes=len(info.labels), pretrained=False)
    _fit_weights(model, state, f"The bundle {path.name} is damaged: its weights do not fit {info.architecture}")
    name = str(info.provenance.get("name") or path.stem)
    files = sorted(str(f) for f in path.iterdir() if f.is_file()) if path.is_dir() else [str(path)]
    return _Built(model, info.architecture, info.labels, info.data_config, f"bundle {path}", name, tuple(files))


def _load_builtin(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    from engine.builtin import ensure_builtin_bundle, package_weights_file  # engine.builtin builds on this module

    built = _load_bundle(ModelSpec(source=Bundle(str(ensure_builtin_bundle(on_event)))), on_event, cancel)
    built.source = "built into Classifier Studio (works offline)"
    built.files += (str(package_weights_file()),)  # a new package version converts the bundle again
    return built


def _load_zero_shot(spec: ModelSpec, on_event: EventSink, cancel: CancelToken) -> _Built:
    from engine import zero_shot  # imports open_clip, which only CLIP models need

    arch = _require_arch(spec, "Choose a CLIP model, e.g. clip/ViT-B-32/openai.")
    if not is_clip_arch(arch):
        raise UserFacingError(f"{arch} is not a CLIP model.", "Zero-shot classes need a CLIP model.")
    weights, source = zero_shot.clip_weights(arch, spec.source.path, on_event, cancel)
    cancel.check()
    classes, prompt = spec.source.classes, spec.source.prompt
    model, config = zero_shot.build_zero_shot(arch, weights, classes, on_event, cancel, prompt)
    return _Built(model, arch, classes, config, source, zero_shot_name(arch), files=(str(weights),))


_LOADERS: dict[type, Callable[[ModelSpec, EventSink, CancelToken], _Built]] = {
    Hub: _load_hub,
    WeightsFile: _load_file,
    Bundle: _load_bundle,
    Builtin: _load_builtin,
    RandomInit: _load_random,
    ZeroShot: _load_zero_shot,
}


def _fit_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        details = ", ".join(
            f"{len(keys)} {kind} (e.g. {keys[0]})"
            for kind, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        )
        raise UserFacingError(f"{what}: {details}.", "Choose the architecture these weights were trained for.")
    model.load_state_dict(state, strict=True)


def _classifier_out_features(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """Classes in the checkpoint's head, so fine-tuned weights with their own class count load too."""
    head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    if isinstance(head, (tuple, list)):
        head = head[0]
    weight = state.get(f"{head}.weight") if head else None
    if weight is None and isinstance(model, torch.nn.Module):  # torchvision: the last Linear layer
        linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
        weight = state.get(f"{linears[-1]}.weight") if linears else None
    return int(weight.shape[0]) if weight is not None and weight.ndim >= 1 else None


def _num_classes(model: torch.nn.Module) -> int:
    if getattr(model, "num_classes", None):
        return int(model.num_classes)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return int(linears[-1].out_features)


def _require_arch(spec: ModelSpec, hint: str = "Choose a model from the catalog or type a timm model name.") -> str:
    if not spec.arch:
        raise UserFacingError("No model architecture was given.", hint)
    return spec.arch


def _torchvision_entry(arch: str) -> tuple[str, str, DataConfig]:
    name = arch[len(TORCHVISION_PREFIX):]
    if name not in TORCHVISION_MODELS:
        raise UserFacingError(
            f"Unknown torchvision model '{name}'.", f"Available: {', '.join(sorted(TORCHVISION_MODELS))}."
        )
    return TORCHVISION_MODELS[name]


def _check_timm_name(arch: str) -> None:
    base = arch.split(".", 1)[0]
    if timm.is_model(base):
        return
    close = suggest_architectures(base)
    hint = f"Did you mean {', '.join(close)}?" if close else "See `python main.py models` for the catalog."
    raise UserFacingError(f"Unknown model '{arch}'.", hint)
