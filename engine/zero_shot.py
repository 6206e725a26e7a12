"""Zero-shot classification with CLIP: the user names the classes, and no training is needed.

CLIP's text encoder turns each class name, put in a sentence ("a photo of a coffee mug.", or one the user wrote),
into an embedding, once, when the model loads. An image's logits are then its CLIP similarity to each class
(cosine similarity times CLIP's learned scale), as in the CLIP paper, so softmax gives the class probabilities.
The result is an ordinary image classifier: a plain module from image to logits, which every backend, ONNX
Runtime's export and the live view run like any other.

open_clip (mlfoundations' implementation, which the CLIP checkpoints on the Hugging Face Hub are published for)
builds the model and its tokenizer; its vocabulary ships inside the package, so nothing but the weights is ever
downloaded.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch

from engine.clip_catalog import CLIP_MODELS, DEFAULT_PROMPT, fill_prompt, split_clip_arch
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, Progress
from engine.hub import download_hub_weights
from engine.onnx_session import ClassEmbeddings
from engine.specs import DataConfig
from engine.weights import read_state_dict

TEXT_BATCH = 8  # class names encoded per step: progress and cancellation between steps
# open_clip publishes safetensors beside its original pickles; both are read safely (engine.weights).
CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_RESIZE_MODES = {"shortest": "center", "squash": "squash", "longest": "border"}  # open_clip's → DataConfig's


class ImageFeatures(torch.nn.Module):
    """CLIP's image encoder, with its features scaled to unit length: what ONNX Runtime exports and runs."""

    def __init__(self, visual: torch.nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.visual(images), dim=-1)


class ZeroShotClassifier(torch.nn.Module):
    """CLIP's image encoder and the class names' text embeddings: images in, one logit per class out."""

    def __init__(self, visual: torch.nn.Module, class_embeddings: torch.Tensor, logit_scale: torch.Tensor) -> None:
        super().__init__()
        self.features = ImageFeatures(visual)
        self.num_classes = class_embeddings.shape[0]
        self.register_buffer("class_embeddings", class_embeddings)  # classes × dim, unit length
        self.register_buffer("logit_scale", logit_scale.detach().exp().reshape(()))  # CLIP keeps its log

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * self.features(images) @ self.class_embeddings.T

    def class_embeddings_array(self) -> ClassEmbeddings:
        """The last step in numpy, for a backend that runs `features` alone (see ClassEmbeddings)."""
        vectors = self.class_embeddings.detach().float().cpu().numpy()
        return ClassEmbeddings(vectors, float(self.logit_scale))


def new_clip(name: str, quick_gelu: bool = False) -> torch.nn.Module:
    """open_clip's model `name` with random weights (for the caller to replace), in eval mode."""
    import open_clip

    with _quiet_about_random_weights():
        return open_clip.create_model(name, force_quick_gelu=quick_gelu, pretrained_text=False).eval()


def clip_weights(arch: str, path: str, on_event: EventSink, cancel: CancelToken) -> tuple[Path, str]:
    """The checkpoint file for `arch` and where it came from, in words: `path`, or downloaded from the Hub once."""
    if path:
        return Path(path), f"file {path}"
    name, tag = split_clip_arch(arch)
    config = _pretrained_config(name, tag)
    repo = str(config.get("hf_hub") or "").strip("/")
    if not repo:
        raise UserFacingError(
            f"open_clip has no Hugging Face Hub weights for {name} ({tag}).", "Load a checkpoint file for it instead."
        )
    return download_hub_weights(repo, on_event, cancel, CLIP_WEIGHT_FILES), f"Hugging Face Hub ({repo})"


def build_zero_shot(
    arch: str,
    weights: Path,
    classes: tuple[str, ...],
    on_event: EventSink,
    cancel: CancelToken,
    prompt: str = DEFAULT_PROMPT,
) -> tuple[ZeroShotClassifier, DataConfig]:
    """The zero-shot classifier for `classes`, each put in the sentence `prompt`, from the CLIP checkpoint
    `weights`, and its data config."""
    import open_clip
    from open_clip.convert import convert_state_dict

    name, tag = split_clip_arch(arch)
    config = _pretrained_config(name, tag)
    on_event(Log("info", f"Reading {weights.name}"))
    state = read_state_dict(weights)  # safely: never unpickles code
    cancel.check()
    # OpenAI's checkpoints were trained with QuickGELU: the wrong activation gives wrong answers, not errors.
    clip = new_clip(name, quick_gelu=bool(config.get("quick_gelu")))
    state = convert_state_dict(clip, state)  # third-party layouts (Apple's MobileCLIP) → open_clip's
    missing, unexpected = clip.load_state_dict(state, strict=False)
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise UserFacingError(
            f"{weights.name} is not a checkpoint of CLIP {name}: {len(missing)} missing and {len(unexpected)} "
            f"unexpected tensors (e.g. {example}).",
            "Choose the CLIP model these weights were trained for.",
        )
    embeddings = _class_embeddings(clip, open_clip.get_tokenizer(name), classes, prompt, on_event, cancel)
    model = ZeroShotClassifier(clip.visual, embeddings, clip.logit_scale)
    return model, _data_config(clip.visual.preprocess_cfg, config)


def _class_embeddings(
    clip: torch.nn.Module,
    tokenizer,
    classes: tuple[str, ...],
    prompt: str,
    on_event: EventSink,
    cancel: CancelToken,
) -> torch.Tensor:
    what = "Reading the class names"
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(classes), TEXT_BATCH):
            cancel.check()
            on_event(Progress(what, start, len(classes)))
            names = classes[start:start + TEXT_BATCH]
            chunks.append(clip.encode_text(tokenizer([fill_prompt(prompt, n) for n in names]), normalize=True))
    on_event(Progress(what, len(classes), len(classes)))
    return torch.cat(chunks).clone()  # out of inference mode, so it can be a module's buffer


@contextlib.contextmanager
def _quiet_about_random_weights() -> Iterator[None]:
    """open_clip warns on the root logger that a model made without weights is random: drop that one line."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _pretrained_config(name: str, tag: str) -> dict:
    import open_clip

    if name not in open_clip.list_models():
        raise UserFacingError(
            f"Unknown CLIP model '{name}'.",
            f"Choose one of {', '.join(sorted({m.name for m in CLIP_MODELS}))}, or another open_clip model name.",
        )
    return open_clip.get_pretrained_cfg(name, tag) if tag else {}


def _data_config(preprocess: dict, pretrained: dict) -> DataConfig:
    """open_clip's eval transform (resize, centre crop, normalise) in DataConfig's words."""
    merged = {**preprocess, **{k: v for k, v in pretrained.items() if k in preprocess and v is not None}}
    height, width = merged["size"] if isinstance(merged["size"], (tuple, list)) else (merged["size"],) * 2
    return DataConfig(
        input_size=(3, int(height), int(width)),
        interpolation=str(merged.get("interpolation") or "bicubic"),
        mean=tuple(float(v) for v in merged["mean"]),
        std=tuple(float(v) for v in merged["std"]),
        crop_pct=1.0,  # open_clip resizes to the input size itself, then crops
        crop_mode=_RESIZE_MODES.get(str(merged.get("resize_mode") or "shortest"), "center"),
    )
