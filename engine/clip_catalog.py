"""The CLIP models Classifier Studio offers for zero-shot classification, and the words for them.

No torch here: the window and the command line name CLIP models and check class names before the engine
imports torch (engine.zero_shot builds the models).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import UserFacingError

CLIP_PREFIX = "clip/"
MAX_CLASSES = 1000
# The sentence each class name is put in: a bare name matches photos less well than a sentence (the CLIP paper).
DEFAULT_PROMPT = "a photo of a {}."
CLASS_SLOT = "{}"
MAX_PROMPT_CHARS = 200  # CLIP reads 77 tokens at most: the class name must still fit after the sentence


@dataclass(frozen=True)
class ClipModel:
    """A curated CLIP checkpoint: open_clip's model name and pretrained tag."""

    name: str  # "ViT-B-32"
    tag: str  # "openai"
    display_name: str  # "CLIP ViT-B/32 (OpenAI)"
    params: int  # image and text towers, counted on open_clip's model
    gmacs: float  # multiply-adds of the image tower for one 224x224 image: the cost per photo classified

    @property
    def arch(self) -> str:
        return clip_arch(self.name, self.tag)

    @property
    def download_gb(self) -> float:
        return self.params * 4 / 1e9  # fp32 checkpoints


# Light to heavy: OpenAI's originals, and LAION's open retraining of the smallest, which is more accurate.
# Counted on open_clip's models as scripts/generate_catalog.py counts timm's (FlopCounterMode on the meta device);
# tests/engine/test_zero_shot.py counts them again.
CLIP_MODELS: tuple[ClipModel, ...] = (
    ClipModel("ViT-B-32", "openai", "CLIP ViT-B/32 (OpenAI)", 151_277_313, 4.41),
    ClipModel("ViT-B-32", "laion2b_s34b_b79k", "CLIP ViT-B/32 (LAION-2B)", 151_277_313, 4.41),
    ClipModel("ViT-B-16", "openai", "CLIP ViT-B/16 (OpenAI)", 149_620_737, 17.56),
    ClipModel("ViT-L-14", "openai", "CLIP ViT-L/14 (OpenAI)", 427_616_513, 81.01),
)
CLIP_FAMILY = "CLIP"
ZERO_SHOT_TAG = "zero-shot"


def clip_arch(name: str, tag: str) -> str:
    return f"{CLIP_PREFIX}{name}/{tag}"


DEFAULT_CLIP_ARCH = CLIP_MODELS[0].arch


def is_clip_arch(arch: str) -> bool:
    return arch == CLIP_PREFIX.rstrip("/") or arch.startswith(CLIP_PREFIX)


def split_clip_arch(arch: str) -> tuple[str, str]:
    """("ViT-B-32", "openai") for "clip/ViT-B-32/openai"; the tag is "" for a model given as a local file."""
    name, _, tag = arch[len(CLIP_PREFIX):].partition("/")
    return name, tag


def resolve_clip_arch(arch: str) -> str:
    """A CLIP model as typed, in full: "clip" is the default model, "clip/ViT-B-16" its curated checkpoint."""
    if arch in (CLIP_PREFIX, CLIP_PREFIX.rstrip("/")):
        return DEFAULT_CLIP_ARCH
    name, tag = split_clip_arch(arch)
    if not tag:
        tag = next((m.tag for m in CLIP_MODELS if m.name.casefold() == name.casefold()), "")
    return clip_arch(name, tag) if tag else f"{CLIP_PREFIX}{name}"


def clip_display_name(arch: str) -> str:
    for model in CLIP_MODELS:
        if model.arch == arch:
            return model.display_name
    name, tag = split_clip_arch(arch)
    return f"CLIP {name} ({tag})" if tag else f"CLIP {name}"


def zero_shot_name(arch: str) -> str:
    """What the status bar calls a zero-shot model, while it loads and once it has."""
    return f"{clip_display_name(arch)} · zero-shot"


def parse_classes(text: str) -> tuple[str, ...]:
    """Class names as a user types them: one per line, or separated by commas; blanks and repeats dropped.

    Raises UserFacingError unless there are at least two (one class would always win, at 100 %).
    """
    names: list[str] = []
    seen: set[str] = set()
    for part in re.split(r"[,\n]", text):
        name = " ".join(part.split())
        if name and name.casefold() not in seen:
            names.append(name)
            seen.add(name.casefold())
    if len(names) < 2:
        raise UserFacingError(
            "Zero-shot classification needs at least two class names.",
            'Type the classes to tell apart, separated by commas: for example "cat, dog, coffee mug".',
        )
    if len(names) > MAX_CLASSES:
        raise UserFacingError(f"{len(names):,} class names are more than {MAX_CLASSES:,}.", "Give fewer classes.")
    return tuple(names)


def parse_prompt(text: str) -> str:
    """The sentence as the user typed it, spaces tidied; blank means DEFAULT_PROMPT.

    Raises UserFacingError unless it holds {} exactly once, where each class name goes.
    """
    prompt = " ".join(text.split())
    if not prompt:
        return DEFAULT_PROMPT
    if prompt.count(CLASS_SLOT) != 1:
        raise UserFacingError(
            f'The sentence "{prompt}" needs {CLASS_SLOT} once, where each class name goes.',
            'For example: "a photo of a {}, a type of bird." or "a close-up photo of a {} on a conveyor belt."',
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserFacingError(
            f"The sentence is {len(prompt)} characters long, more than {MAX_PROMPT_CHARS}.",
            "CLIP reads short sentences: keep it to a few words around {}.",
        )
    return prompt


def prompt_as_typed(prompt: str) -> str:
    """The sentence as the user would type it: empty for DEFAULT_PROMPT (parse_prompt's inverse), so that a
    remembered or shown default stays "CLIP's own sentence"."""
    return "" if prompt == DEFAULT_PROMPT else prompt


def fill_prompt(prompt: str, name: str) -> str:
    """The sentence for one class: `name` where {} is (other braces are the user's text, left as they are)."""
    return prompt.replace(CLASS_SLOT, name, 1)
