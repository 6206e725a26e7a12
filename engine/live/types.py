"""What the live pipeline is told and what it tells, as plain values: its settings, each prediction, its stats.

Light to import (no torch, numpy or OpenCV): the window makes and shows these before the engine thread has
imported any of them.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserFacingError
from engine.results import TopClass

MAX_SMOOTHING = 0.95


@dataclass(frozen=True)
class LiveSettings:
    topk: int = 5
    smoothing: float = 0.0  # EMA weight of the past, 0 (off) … 0.95; probs = s*prev + (1-s)*new
    roi: tuple[float, float, float, float] | None = None  # (x, y, w, h) as fractions of the frame; None = all
    mirror: bool = False  # flip left-right (front cameras) before the ROI and the model

    def __post_init__(self) -> None:
        if self.topk < 1:
            raise UserFacingError(f"Top-k must be at least 1 (got {self.topk}).", "Show at least one class.")
        if not 0.0 <= self.smoothing <= MAX_SMOOTHING:
            raise UserFacingError(f"Smoothing must be between 0 and {MAX_SMOOTHING} (got {self.smoothing:g}).",
                                  "Use 0 for none; 0.5–0.8 steadies flickering predictions.")
        if self.roi is not None:
            x, y, w, h = self.roi
            if not (0 <= x < 1 and 0 <= y < 1 and 0 < w and 0 < h and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9):
                raise UserFacingError(f"The region of interest {self.roi} does not fit inside the frame.",
                                      "Give x, y, width and height as fractions of the frame (0–1).")


@dataclass(frozen=True)
class LivePrediction:
    frame_index: int
    top: tuple[TopClass, ...]  # after smoothing
    captured_at: float
    shown_at: float  # perf_counter when the prediction was ready
    latency_ms: float  # shown_at - captured_at
    inference_fps: float  # rolling
    capture_fps: float
    dropped: int  # frames the model never saw (latest-frame-wins)


@dataclass(frozen=True)
class LiveStats:
    state: str  # the source's SourceStatus state
    frames_captured: int
    frames_processed: int
    dropped: int
    capture_fps: float
    inference_fps: float
