"""What classifying gives back, as plain values: the top classes of an image, and one image's result.

No torch here, nor numpy (a test keeps it so): the window shows and exports results without importing them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class TopClass:
    label: str
    index: int
    prob: float


@dataclass(frozen=True)
class ImageResult:
    path: str
    top: tuple[TopClass, ...] = ()
    ms: float = 0.0  # decode + preprocess + this image's share of the batch's inference
    error: str | None = None
    thumbnail: np.ndarray | None = None  # small RGB uint8 copy for the GUI, only when asked for

    def as_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        top = [{"label": t.label, "index": t.index, "prob": round(t.prob, 6)} for t in self.top]
        return {"path": self.path, "top": top, "ms": round(self.ms, 2)}
