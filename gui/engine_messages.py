"""What the window and the engine thread say to each other: requests, answers and failures, as plain values.

Qt's queued signals carry these between the GUI thread and the engine thread (gui/engine_worker.py,
gui/live_worker.py); widgets read them without touching the engine.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken
from engine.results import ImageResult
from engine.specs import InferenceChoice, ModelSpec

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
BUG_MESSAGE = "Something went wrong inside Classifier Studio."
BUG_HINT = "Details are in the log; please report them."


@dataclass(frozen=True)
class LoadRequest:
    request_id: int
    spec: ModelSpec
    choice: InferenceChoice = InferenceChoice()
    calibration_folders: tuple[str, ...] = ()  # where int8 finds a few of the user's images to calibrate on
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class ClassifyRequest:
    request_id: int
    inputs: tuple[str, ...] = ()  # files and folders, expanded in the worker
    pasted: tuple[tuple[str, bytes], ...] = ()  # (name, encoded image) from the clipboard
    topk: int = 5
    thumbnail_size: int = 0
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class ModelInfo:
    request_id: int
    name: str
    arch: str
    device: str  # e.g. "CPU · fp32"
    backend: str  # what runs it: "PyTorch", "ONNX Runtime", "ONNX Runtime int8"
    backend_note: str  # why the backend is not the one asked for, or int8's measured agreement; else ""
    source: str
    num_classes: int
    load_seconds: float


@dataclass(frozen=True)
class LoadProgress:
    request_id: int
    text: str
    done: int
    total: int  # 0 when unknown
    unit: str  # "bytes" or "items"


@dataclass(frozen=True)
class BatchProgress:
    request_id: int
    done: int
    total: int


@dataclass(frozen=True)
class ClassifiedImage:
    request_id: int
    result: ImageResult


@dataclass(frozen=True)
class BatchFinished:
    request_id: int
    count: int
    cancelled: bool


@dataclass(frozen=True)
class ExplainRequest:
    """Where the model looked in the photo at `path` for the class a result card shows (engine.explain)."""

    request_id: int
    path: str
    class_index: int
    label: str  # the class's name when it was classified: the model in use now may have other classes
    pasted: bytes | None = None  # a pasted picture's PNG: it has no file to read again
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class ExplainProgress:
    request_id: int
    done: int  # forward passes, each with one part of the picture hidden
    total: int


@dataclass(frozen=True)
class ExplainedImage:
    request_id: int
    overlay: np.ndarray  # HxWx3 uint8 RGB: what the model saw, the heat drawn over it
    caption: str


@dataclass(frozen=True)
class Failure:
    request_id: int
    message: str
    hint: str = ""
    cancelled: bool = False
    is_bug: bool = False


def failure_from(request_id: int, exc: Exception) -> Failure:
    """What the GUI is told of an exception in the engine thread; anything unexpected is logged as a bug."""
    if isinstance(exc, Cancelled):
        return Failure(request_id, "Cancelled.", cancelled=True)
    if isinstance(exc, UserFacingError):
        return Failure(request_id, exc.message, exc.hint)
    log.exception("Unexpected error in the engine thread")
    return Failure(request_id, BUG_MESSAGE, BUG_HINT, is_bug=True)
