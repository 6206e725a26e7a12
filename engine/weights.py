"""Reads weights files users give us, safely: safetensors, or torch.load(weights_only=True). Never unpickles code.

torch is imported where tensors are read, not with the module: the window checks files (bundle or not, their
header) before the engine thread has imported torch.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from engine.errors import UserFacingError

if TYPE_CHECKING:
    import torch

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
WEIGHTS_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
# Training checkpoints often wrap the weights; these are the keys PyTorch tools commonly use.
_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "module", "net")


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="numpy") as handle:  # the header only; "pt" would import torch
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _not_weights(path, f"it is not a valid .safetensors file ({exc})") from exc


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors in a weights file, unwrapped from training checkpoints and DataParallel prefixes."""
    path = Path(path)
    if path.is_dir():
        raise UserFacingError(
            f"{path} is a folder, not a weights file.",
            "Choose a .safetensors/.pth file, or open the folder as a model bundle.",
        )
    if not path.is_file():
        raise UserFacingError(f"The weights file {path} does not exist.", "Check the path and try again.")
    suffix = path.suffix.lower()
    if suffix not in WEIGHTS_SUFFIXES:
        raise _not_weights(path, f"'{suffix or 'no extension'}' is not a weights format")
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise _not_weights(path, f"it is not a valid .safetensors file ({exc})") from exc
    return _unwrap(path, _torch_load(path))


def _torch_load(path: Path) -> object:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):  # a broken pickle, not one the safe loader refused
            raise _not_weights(path, "it is damaged or not a PyTorch weights file") from exc
        # The weights-only loader refuses any pickle that would build arbitrary objects or call functions.
        raise UserFacingError(
            f"{path.name} contains Python code or objects, not just weights; Classifier Studio refused to open it.",
            "Files like this can run programs on your computer. Ask for a .safetensors or plain state_dict file.",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways (IndexError, struct.error, ...) on damaged files
        raise _not_weights(path, "it is damaged or not a PyTorch weights file") from exc


def _unwrap(path: Path, checkpoint: object) -> dict[str, torch.Tensor]:
    import torch

    while isinstance(checkpoint, dict):
        inner = next((checkpoint[k] for k in _WRAPPER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if inner is None:
            break
        checkpoint = inner
    if not isinstance(checkpoint, dict):
        raise _not_weights(path, "it holds no named tensors")
    tensors = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise _not_weights(path, "it holds no tensors")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel/DistributedDataParallel
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _not_weights(path: Path, why: str) -> UserFacingError:
    return UserFacingError(
        f"Cannot read {path.name}: {why}.",
        "Choose a .safetensors or .pth/.pt/.bin weights file, or a Classifier Studio model bundle.",
    )


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter's and buffer's name, type, shape and bytes (~0.07 s for 100 MB)."""
    import torch

    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # raw bytes, whatever the dtype (bf16 too)
    return digest.hexdigest()
