"""Runs the engine in one long-lived worker thread and speaks to widgets only through queued signals.

The worker owns the loaded model (one owner for the model and its device context). Requests carry their own
cancel token, which the GUI thread sets directly: a busy worker cannot process a queued "cancel" signal.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Event, Log, Progress
from engine.models import LoadedModel, ModelSpec, load_model
from engine.predict import Classifier, ImageResult, expand_paths

log = logging.getLogger(__name__)
BUG_MESSAGE = "Something went wrong inside Classifier Studio."
BUG_HINT = "Details are in the log; please report them."


@dataclass(frozen=True)
class LoadRequest:
    request_id: int
    spec: ModelSpec
    device: str = "auto"
    precision: str = "fp32"
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
class Failure:
    request_id: int
    message: str
    hint: str = ""
    cancelled: bool = False
    is_bug: bool = False


class EngineWorker(QObject):
    """Lives in the engine thread. Each slot catches everything: a worker that dies silently hangs the app."""

    model_load_progressed = Signal(object)  # LoadProgress
    model_loaded = Signal(object)  # ModelInfo
    model_load_failed = Signal(object)  # Failure
    batch_started = Signal(object)  # BatchProgress (done=0)
    image_classified = Signal(object)  # ClassifiedImage
    batch_progressed = Signal(object)  # BatchProgress
    batch_finished = Signal(object)  # BatchFinished
    batch_failed = Signal(object)  # Failure

    def __init__(self) -> None:
        super().__init__()
        self._classifier: Classifier | None = None

    @Slot(object)
    def load_model(self, request: LoadRequest) -> None:
        started = time.perf_counter()
        try:
            request.cancel.check()  # superseded while it waited in the queue
            loaded: LoadedModel = load_model(
                request.spec, request.device, request.precision, self._load_events(request), request.cancel
            )
            request.cancel.check()
            self._classifier = Classifier(loaded)
            self.model_loaded.emit(
                ModelInfo(
                    request.request_id,
                    loaded.name,
                    loaded.arch,
                    loaded.device.description,
                    loaded.source,
                    loaded.num_classes,
                    time.perf_counter() - started,
                )
            )
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user
            self.model_load_failed.emit(_failure(request.request_id, exc))

    @Slot(object)
    def classify(self, request: ClassifyRequest) -> None:
        try:
            request.cancel.check()
            if self._classifier is None:
                raise UserFacingError("No model is loaded yet.", "Pick a model in the model picker first.")
            paths = expand_paths(request.inputs, request.cancel)
            total = len(paths) + len(request.pasted)
            self.batch_started.emit(BatchProgress(request.request_id, 0, total))
            done = 0
            for name, data in request.pasted:
                request.cancel.check()
                result = self._classifier.classify_encoded(name, data, request.topk, request.thumbnail_size)
                self.image_classified.emit(ClassifiedImage(request.request_id, result))
                done += 1
                self.batch_progressed.emit(BatchProgress(request.request_id, done, total))

            def on_event(event: Event) -> None:
                if isinstance(event, Progress):
                    self.batch_progressed.emit(BatchProgress(request.request_id, done + event.done, total))

            results = self._classifier.classify_files(
                paths,
                topk=request.topk,
                on_result=lambda r: self.image_classified.emit(ClassifiedImage(request.request_id, r)),
                on_event=on_event,
                cancel=request.cancel,
                thumbnail_size=request.thumbnail_size,
            )
            self.batch_finished.emit(BatchFinished(request.request_id, done + len(results), False))
        except Cancelled:
            self.batch_finished.emit(BatchFinished(request.request_id, -1, True))
        except Exception as exc:  # noqa: BLE001
            self.batch_failed.emit(_failure(request.request_id, exc))

    def _load_events(self, request: LoadRequest):
        def on_event(event: Event) -> None:
            if isinstance(event, Progress):
                self.model_load_progressed.emit(
                    LoadProgress(request.request_id, event.what, event.done, event.total, event.unit)
                )
            elif isinstance(event, Log):
                self.model_load_progressed.emit(LoadProgress(request.request_id, event.text, 0, 0, "items"))

        return on_event


def _failure(request_id: int, exc: Exception) -> Failure:
    if isinstance(exc, Cancelled):
        return Failure(request_id, "Cancelled.", cancelled=True)
    if isinstance(exc, UserFacingError):
        return Failure(request_id, exc.message, exc.hint)
    log.exception("Unexpected error in the engine thread")
    return Failure(request_id, BUG_MESSAGE, BUG_HINT, is_bug=True)


class EngineBridge(QObject):
    """The GUI thread's handle on the engine thread: sends requests, holds their cancel tokens, shuts down cleanly.

    Widgets connect to `bridge.worker`'s signals; Qt queues them onto the GUI thread.
    """

    _load_requested = Signal(object)
    _classify_requested = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self._thread)
        self._load_requested.connect(self.worker.load_model)
        self._classify_requested.connect(self.worker.classify)
        self._current_load: LoadRequest | None = None
        self._batches: dict[int, ClassifyRequest] = {}
        # Bound slots of this GUI-thread object, so Qt queues these calls onto the GUI thread.
        self.worker.batch_finished.connect(self._forget_batch)
        self.worker.batch_failed.connect(self._forget_batch)
        self._thread.start()

    @Slot(object)
    def _forget_batch(self, event: BatchFinished | Failure) -> None:
        self._batches.pop(event.request_id, None)

    @property
    def current_load_id(self) -> int | None:
        return self._current_load.request_id if self._current_load else None

    def request_load(self, spec: ModelSpec, device: str = "auto", precision: str = "fp32") -> int:
        """Load a model; a load still running is superseded (cancelled), as switching models mid-load means."""
        self.cancel_load()
        self._current_load = LoadRequest(next(self._ids), spec, device, precision)
        self._load_requested.emit(self._current_load)
        return self._current_load.request_id

    def cancel_load(self) -> None:
        if self._current_load is not None:
            self._current_load.cancel.cancel()

    def request_classify(
        self,
        inputs: tuple[str, ...] = (),
        pasted: tuple[tuple[str, bytes], ...] = (),
        topk: int = 5,
        thumbnail_size: int = 0,
    ) -> int:
        """Classify files/folders (and pasted images); batches run one after another in the order asked."""
        request = ClassifyRequest(next(self._ids), tuple(inputs), tuple(pasted), topk, thumbnail_size)
        self._batches[request.request_id] = request
        self._classify_requested.emit(request)
        return request.request_id

    def cancel_classification(self) -> None:
        for request in list(self._batches.values()):
            request.cancel.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and stop the engine thread; called when the window closes."""
        self.cancel_load()
        self.cancel_classification()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("The engine thread did not stop within %d ms", timeout_ms)
