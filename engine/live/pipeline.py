"""Inference on the newest frame: mirror, region of interest, the still-image preprocessing, the model, and
optional smoothing of the probabilities over time.

No torch here: the window makes the pipeline (when the user starts a stream) before torch may be imported, and
a model that ONNX Runtime runs needs none.
"""
from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from engine.events import EventSink, ignore_events
from engine.live.capture import CaptureThread, LatestFrame, RollingRate, SourceStatus
from engine.live.sources import Frame, FrameSource, opencv
from engine.live.types import LivePrediction, LiveSettings, LiveStats
from engine.results import TopClass

if TYPE_CHECKING:
    from engine.predict import Classifier
    from engine.preprocess import Preprocessor


def live_inference_threads() -> int:
    """Threads the model may use while live: all cores but one, which capture and display need."""
    return max(1, (os.cpu_count() or 2) - 1)


class LivePipeline:
    """A source read by its own capture thread, and step() to classify the newest frame with any Classifier.

    The classifier is passed to each step, so the caller can switch models without stopping the stream.
    `settings` may be replaced at any time; each step reads it once.
    """

    def __init__(self, source: FrameSource, on_event: EventSink = ignore_events,
                 settings: LiveSettings = LiveSettings(), retry_s: float = 3.0, max_backoff_s: float = 30.0) -> None:
        self.source = source
        self.settings = settings
        self.mailbox = LatestFrame()
        self.capture = CaptureThread(source, self.mailbox, on_event, retry_s, max_backoff_s)
        self._rate = RollingRate()
        self._inference_fps = 0.0
        self._smoothed: np.ndarray | None = None
        self._smoothed_for: Classifier | None = None
        self.frames_processed = 0
        self._torch_threads_before = 0
        self._resize_threads: ThreadPoolExecutor | None = None  # made at the first frame, ended by stop()

    def start(self) -> None:
        """Starts the capture thread; it opens the source and reports how that went as SourceStatus events."""
        self._leave_capture_a_core()
        self.capture.start()

    def _leave_capture_a_core(self) -> None:
        """torch's intra-op threads on every core starve capture and display: on 2 cores a step took ~800 ms
        instead of ~64 ms. While live, PyTorch models leave one core to them (torch's setting is per process).

        Only once torch is imported: a model served by ONNX Runtime needs no torch, and importing it would hold
        the stream up for seconds. Each step checks again, for a PyTorch model switched to mid-stream.
        """
        torch = sys.modules.get("torch")
        if torch is not None and not self._torch_threads_before:
            self._torch_threads_before = torch.get_num_threads()
            torch.set_num_threads(live_inference_threads())

    def step(self, classifier: Classifier, timeout: float = 0.1) -> LivePrediction | None:
        """Classify the newest frame not yet classified; None if none arrives within `timeout`."""
        frame = self.mailbox.take(timeout)
        if frame is None:
            return None
        self._leave_capture_a_core()
        settings = self.settings
        if self._resize_threads is None:
            self._resize_threads = ThreadPoolExecutor(2, thread_name_prefix="Classifier Studio live resize")
        batch = frame_to_input(classifier, frame.image, settings, self._resize_threads)
        top = self._predict(classifier, batch, settings)
        shown_at = time.perf_counter()
        self._inference_fps = self._rate.tick(shown_at)
        self.frames_processed += 1
        return LivePrediction(
            frame.index, top, frame.captured_at, shown_at, (shown_at - frame.captured_at) * 1000,
            self._inference_fps, self.capture.capture_fps, self.mailbox.dropped,
        )

    def latest_frame(self) -> Frame | None:
        """The newest captured frame for display: mirrored when the settings say so, never cropped to the ROI."""
        frame = self.mailbox.peek()
        if frame is None or not self.settings.mirror:
            return frame
        return Frame(opencv().flip(frame.image, 1), frame.index, frame.captured_at)

    def pause(self) -> None:
        """Freeze the stream: capture stops reading (a file resumes where it stopped), so no new frames come."""
        self.capture.pause()

    def resume(self) -> None:
        self.capture.resume()

    def reset_smoothing(self) -> None:
        self._smoothed = None

    def stop(self) -> None:
        self.capture.stop()
        threads, self._resize_threads = self._resize_threads, None
        if threads is not None:
            threads.shutdown(wait=False)
        if self._torch_threads_before:  # torch was imported and limited
            sys.modules["torch"].set_num_threads(self._torch_threads_before)
            self._torch_threads_before = 0

    @property
    def status(self) -> SourceStatus:
        return self.capture.status

    @property
    def finished(self) -> bool:
        """No prediction will come any more: the source ended, failed or was stopped, and its last frame was taken."""
        return self.mailbox.closed and self.mailbox.pending == 0

    @property
    def stats(self) -> LiveStats:
        return LiveStats(self.capture.status.state, self.capture.frames_captured, self.frames_processed,
                         self.mailbox.dropped, self.capture.capture_fps, self._inference_fps)

    def _predict(self, classifier: Classifier, batch: np.ndarray, settings: LiveSettings) -> tuple[TopClass, ...]:
        if settings.smoothing <= 0:
            self._smoothed = None
            return classifier.predict_batch(batch, settings.topk)[0]
        probs = classifier.probabilities(batch)[0].astype(np.float64)
        previous = self._smoothed
        if previous is not None and previous.shape == probs.shape and self._smoothed_for is classifier:
            probs = settings.smoothing * previous + (1.0 - settings.smoothing) * probs
        self._smoothed, self._smoothed_for = probs, classifier
        return classifier.top_classes(probs, settings.topk)


def prepare_frame(bgr: np.ndarray, settings: LiveSettings) -> np.ndarray:
    """Mirror, crop to the ROI and convert to RGB: the frame as a picture the still-image path would see.

    OpenCV's flip and colour conversion, not numpy's reversed views: copying a 640x480 frame through a reversed
    view took 1.6 ms of every live step, OpenCV takes a tenth of that.
    """
    cv2 = opencv()
    bgr = np.ascontiguousarray(bgr)
    if settings.mirror:
        bgr = cv2.flip(bgr, 1)
    return cv2.cvtColor(crop_to_roi(bgr, settings.roi), cv2.COLOR_BGR2RGB)


def crop_to_roi(image: np.ndarray, roi: tuple[float, float, float, float] | None) -> np.ndarray:
    """The part of `image` in the ROI (a view, no copy), or all of it without one."""
    if roi is None:
        return image
    left, top, right, bottom = roi_box(image.shape[1], image.shape[0], roi)
    return image[top:bottom, left:right]


def roi_box(width: int, height: int, roi: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The ROI fractions as a pixel box (left, top, right, bottom), as PIL's crop takes it; at least 1x1."""
    x, y, w, h = roi
    left = min(_round(x * width), width - 1)
    top = min(_round(y * height), height - 1)
    right = max(min(_round((x + w) * width), width), left + 1)
    bottom = max(min(_round((y + h) * height), height), top + 1)
    return left, top, right, bottom


def frame_to_input(
    model: Classifier | Preprocessor, bgr: np.ndarray, settings: LiveSettings, pool: Executor | None = None
) -> np.ndarray:
    """The frame as a batch of one model input: the same numbers the still-image path gives for these pixels.

    `pool`: two threads that resize the frame in half the time. The model waits on this step and leaves the CPU
    idle meanwhile: at 640x480 it is 4.4 ms of a ResNet-50 step's 53 ms.
    """
    from engine.preprocess import Preprocessor

    preprocessor = model if isinstance(model, Preprocessor) else model.preprocessor
    batch = np.empty((1, 3, preprocessor.height, preprocessor.width), dtype=np.float32)
    preprocessor.fill_array(prepare_frame(bgr, settings), batch[0], pool)
    return batch


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up, so a 0.5 ROI of an odd width is stable, unlike round()
