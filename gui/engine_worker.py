"""Runs the engine in one long-lived worker thread and speaks to widgets only through queued signals.

The worker owns the loaded model (one owner for the model and its device context). The requests and answers
are gui.engine_messages' plain values. Requests carry their own cancel token, which the GUI thread sets
directly: a busy worker cannot process a queued "cancel" signal. Live recognition runs in the same thread,
in gui.live_worker's LiveWorker.

torch and timm are imported by this thread's slots, never by the GUI thread: importing them takes seconds, and
the window shows first. The first load also reports the devices torch finds (`devices_listed`). A model ONNX
Runtime ran before needs neither (engine.quick_start): it is ready at once, and the devices are listed beside it.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine.errors import Cancelled, UserFacingError
from engine.events import Event, Log, Progress
from engine.live.sources import Frame, FrameSource
from engine.live.types import LivePrediction, LiveSettings
from engine.specs import InferenceChoice, ModelSpec
from gui.engine_messages import (
    BatchFinished,
    BatchProgress,
    ClassifiedImage,
    ClassifyRequest,
    ExplainedImage,
    ExplainProgress,
    ExplainRequest,
    Failure,
    LoadProgress,
    LoadRequest,
    ModelInfo,
    failure_from,
)
from gui.live_worker import LiveSession, LiveWorker, SnapshotRequest

if TYPE_CHECKING:
    from engine.predict import Classifier

log = logging.getLogger(__name__)


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
    classifier_changed = Signal(object)  # Classifier; for the live worker beside it in the engine thread
    devices_listed = Signal(object)  # engine.specs.DeviceSupport, once, as the first load imports torch
    explain_progressed = Signal(object)  # ExplainProgress
    explained = Signal(object)  # ExplainedImage
    explain_failed = Signal(object)  # Failure

    def __init__(self) -> None:
        super().__init__()
        self._classifier: Classifier | None = None
        self._devices_listed = False

    def _list_devices_once(self, in_background: bool = False) -> None:
        """Import torch and report the devices, once: in this thread, or beside it after a quick start."""
        if self._devices_listed:
            return
        self._devices_listed = True
        if in_background:
            # The engine thread stays free to classify; a later import of torch there waits for this one.
            threading.Thread(target=self._list_devices, name="list-devices", daemon=True).start()
        else:
            self._list_devices()

    def _list_devices(self) -> None:
        try:
            from engine.devices import device_support  # imports torch

            self.devices_listed.emit(device_support())
        except Exception:  # noqa: BLE001 - without the list the picker offers Auto and CPU; loading goes on
            log.exception("Could not list the devices")

    @Slot(object)
    def load_model(self, request: LoadRequest) -> None:
        started = time.perf_counter()
        try:
            from engine.quick_start import quick_classifier, remember  # torch-free

            request.cancel.check()  # superseded while it waited in the queue
            # The window may have said the load waits for a batch: it is under way now.
            self.model_load_progressed.emit(LoadProgress(request.request_id, "Loading", 0, 0, "steps"))
            choice, on_event = request.choice, self._load_events(request)
            quick = quick_classifier(request.spec, choice, on_event, calibration_folders=request.calibration_folders)
            self._list_devices_once(in_background=quick is not None)  # even for a superseded load: the picker waits
            if quick is not None:
                request.cancel.check()  # superseded meanwhile
                self._install(request, quick, [], started)
                return
            # Imported here, in the engine thread (see the module's docstring).
            from engine.models import load_model
            from engine.predict import Classifier, calibration_images
            from engine.preprocess import Preprocessor
            from engine.runtime import create_backend

            request.cancel.check()
            loaded = load_model(request.spec, choice.device, choice.precision, on_event, request.cancel)
            request.cancel.check()
            calibration = []
            if choice.int8:
                calibration = calibration_images(request.calibration_folders, Preprocessor(loaded.data_config))
            notes: list[str] = []
            backend = create_backend(
                loaded, choice.backend, choice.int8, calibration, _noting(on_event, notes), request.cancel
            )
            request.cancel.check()
            classifier = Classifier(loaded, backend)
            self._install(request, classifier, notes, started)
            # For a quick start next time; after "ready", as its PyTorch probe takes a moment on large models.
            remember(request.spec, choice, classifier, calibration_folders=request.calibration_folders)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user
            self.model_load_failed.emit(failure_from(request.request_id, exc))

    def _install(self, request: LoadRequest, classifier: Classifier, notes: list[str], started: float) -> None:
        loaded, backend = classifier.loaded, classifier.backend
        self._classifier = classifier
        self.classifier_changed.emit(classifier)
        self.model_loaded.emit(
            ModelInfo(
                request.request_id,
                loaded.name,
                loaded.arch,
                loaded.device.description,
                backend.name,
                " ".join([*notes, f"int8: {backend.agreement.describe()}."] if backend.agreement else notes),
                loaded.source,
                loaded.num_classes,
                time.perf_counter() - started,
            )
        )

    def _model_in_use(self) -> Classifier:
        if self._classifier is None:
            raise UserFacingError("No model is loaded yet.", "Pick a model in the model picker first.")
        return self._classifier

    @Slot(object)
    def classify(self, request: ClassifyRequest) -> None:
        try:
            from engine.predict import expand_paths  # in the engine thread (see the module's docstring)

            request.cancel.check()
            classifier = self._model_in_use()
            paths = expand_paths(request.inputs, request.cancel)
            total = len(paths) + len(request.pasted)
            self.batch_started.emit(BatchProgress(request.request_id, 0, total))
            done = 0
            for name, data in request.pasted:
                request.cancel.check()
                result = classifier.classify_encoded(name, data, request.topk, request.thumbnail_size)
                self.image_classified.emit(ClassifiedImage(request.request_id, result))
                done += 1
                self.batch_progressed.emit(BatchProgress(request.request_id, done, total))

            def on_event(event: Event) -> None:
                if isinstance(event, Progress):
                    done_now = len(request.pasted) + event.done
                    self.batch_progressed.emit(BatchProgress(request.request_id, done_now, total))

            results = classifier.classify_stream(
                paths, request.topk, on_event=on_event, cancel=request.cancel, thumbnail_size=request.thumbnail_size
            )
            for result in results:  # each goes to the view as it comes: a batch of any size is never held here
                self.image_classified.emit(ClassifiedImage(request.request_id, result))
                done += 1
            self.batch_finished.emit(BatchFinished(request.request_id, done, False))
        except Cancelled:
            self.batch_finished.emit(BatchFinished(request.request_id, -1, True))
        except Exception as exc:  # noqa: BLE001
            self.batch_failed.emit(failure_from(request.request_id, exc))

    @Slot(object)
    def explain(self, request: ExplainRequest) -> None:
        try:
            from engine.decode import decode_image  # in the engine thread (see the module's docstring)
            from engine.explain import class_in_model, explain

            request.cancel.check()
            classifier = self._model_in_use()
            if request.pasted is None and not Path(request.path).is_file():
                raise UserFacingError(
                    f"{Path(request.path).name or request.path} cannot be read again.",
                    "A file moved or deleted since is not found (nor a picture pasted long ago): open the photo "
                    "again to see where the model looks.",
                )
            image = decode_image(request.pasted or request.path, classifier.preprocessor.decode_size)

            def on_event(event: Event) -> None:
                if isinstance(event, Progress):
                    self.explain_progressed.emit(ExplainProgress(request.request_id, event.done, event.total))

            index = class_in_model(classifier.loaded.labels, request.class_index, request.label)
            explanation = explain(classifier, image, index, request.cancel, on_event)
            self.explained.emit(ExplainedImage(request.request_id, explanation.overlay(), explanation.describe()))
        except Exception as exc:  # noqa: BLE001 - cancels included: the card waits for an answer either way
            self.explain_failed.emit(failure_from(request.request_id, exc))

    def _load_events(self, request: LoadRequest):
        def on_event(event: Event) -> None:
            if isinstance(event, Progress):
                self.model_load_progressed.emit(
                    LoadProgress(request.request_id, event.what, event.done, event.total, event.unit)
                )
            elif isinstance(event, Log):
                self.model_load_progressed.emit(LoadProgress(request.request_id, event.text, 0, 0, "items"))

        return on_event


def _noting(on_event, notes: list[str]):
    """Passes events on, keeping (and logging) warnings: why the backend asked for is not the one in use."""

    def sink(event: Event) -> None:
        if isinstance(event, Log) and event.level == "warning":
            log.warning("%s", event.text)
            notes.append(event.text)
        on_event(event)

    return sink


class EngineBridge(QObject):
    """The GUI thread's handle on the engine thread: sends requests, holds their cancel tokens, shuts down cleanly.

    Widgets connect to `bridge.worker`'s and `bridge.live_worker`'s signals; Qt queues them onto the GUI thread.
    """

    _load_requested = Signal(object)
    _classify_requested = Signal(object)
    _cameras_requested = Signal()
    _live_start_requested = Signal(object)
    _live_stop_requested = Signal(object)
    _live_pause_requested = Signal(bool)
    _snapshot_requested = Signal(object)
    _recording_start_requested = Signal(object)
    _recording_stop_requested = Signal()
    _explain_requested = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self.worker = EngineWorker()
        self.live_worker = LiveWorker()
        self.worker.moveToThread(self._thread)
        self.live_worker.moveToThread(self._thread)
        # Both live in the engine thread: the live worker takes a new model before the next queued event runs.
        self.worker.classifier_changed.connect(self.live_worker.use_classifier, Qt.ConnectionType.DirectConnection)
        self._load_requested.connect(self.worker.load_model)
        self._classify_requested.connect(self.worker.classify)
        self._explain_requested.connect(self.worker.explain)
        self._cameras_requested.connect(self.live_worker.list_cameras)
        self._live_start_requested.connect(self.live_worker.start_live)
        self._live_stop_requested.connect(self.live_worker.stop_live)
        self._live_pause_requested.connect(self.live_worker.set_live_paused)
        self._snapshot_requested.connect(self.live_worker.save_snapshot)
        self._recording_start_requested.connect(self.live_worker.start_recording)
        self._recording_stop_requested.connect(self.live_worker.stop_recording)
        self._current_load: LoadRequest | None = None
        self._live: LiveSession | None = None
        self._batches: dict[int, ClassifyRequest] = {}
        self._explaining: dict[int, ExplainRequest] = {}
        # Bound slots of this GUI-thread object, so Qt queues these calls onto the GUI thread.
        self.worker.batch_finished.connect(self._forget_batch)
        self.worker.batch_failed.connect(self._forget_batch)
        self.worker.explained.connect(self._forget_explaining)
        self.worker.explain_failed.connect(self._forget_explaining)
        self._thread.start()

    @Slot(object)
    def _forget_batch(self, event: BatchFinished | Failure) -> None:
        self._batches.pop(event.request_id, None)

    @Slot(object)
    def _forget_explaining(self, event: ExplainedImage | Failure) -> None:
        self._explaining.pop(event.request_id, None)

    @property
    def current_load_id(self) -> int | None:
        return self._current_load.request_id if self._current_load else None

    def request_load(
        self, spec: ModelSpec, choice: InferenceChoice = InferenceChoice(), calibration_folders: tuple[str, ...] = ()
    ) -> int:
        """Load a model; a load still running is superseded (cancelled), as switching models mid-load means."""
        self.cancel_load()
        self._current_load = LoadRequest(next(self._ids), spec, choice, tuple(calibration_folders))
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

    def request_explain(self, path: str, class_index: int, label: str, pasted: bytes | None = None) -> int:
        """Where the model in use looks in the photo at `path` (or the `pasted` picture of that name) for this
        class; answered by explained or explain_failed. Queued behind a batch that is running."""
        request = ExplainRequest(next(self._ids), path, class_index, label, pasted)
        self._explaining[request.request_id] = request
        self._explain_requested.emit(request)
        return request.request_id

    def cancel_explain(self, request_id: int) -> None:
        if request_id in self._explaining:
            self._explaining[request_id].cancel.cancel()

    # ----- live recognition ------------------------------------------------------------------------------

    @property
    def live_session(self) -> LiveSession | None:
        return self._live

    def request_cameras(self) -> None:
        """List the cameras in the engine thread (probing them can take seconds); answered by cameras_listed."""
        self._cameras_requested.emit()

    def start_live(self, source: FrameSource, settings: LiveSettings) -> LiveSession:
        """Stream from `source` with the loaded model (and the models loaded later); a running stream stops first.

        The source opens on the capture thread: open failures come back as a "failed" LiveState.
        """
        from engine.live.pipeline import LivePipeline  # deferred: it imports numpy, which start-up goes without

        self.stop_live()
        session_id = next(self._ids)
        self._live = LiveSession(session_id, LivePipeline(source, self.live_worker.live_sink(session_id), settings))
        self._live_start_requested.emit(self._live)
        return self._live

    def stop_live(self) -> None:
        """Stop stepping at once; the engine thread releases the source (camera) next."""
        if self._live is not None:
            self._live.stopping.set()
            self._live_stop_requested.emit(self._live)
            self._live = None

    def set_live_settings(self, settings: LiveSettings) -> None:
        # Assigning a frozen dataclass is atomic: the next step uses it, even while the engine thread is busy.
        if self._live is not None:
            self._live.pipeline.settings = settings

    def set_live_paused(self, paused: bool) -> None:
        self._live_pause_requested.emit(paused)

    def request_snapshot(self, folder: str, frame: Frame, prediction: LivePrediction | None, model_name: str) -> int:
        """Save `frame` as PNG and `prediction` as JSON in `folder`; answered by snapshot_saved or snapshot_failed."""
        request = SnapshotRequest(next(self._ids), folder, frame, prediction, model_name)
        self._snapshot_requested.emit(request)
        return request.request_id

    def start_recording(self, path: str | Path) -> None:
        """Log every prediction of the running stream to a CSV file until stop_recording or the stream stops."""
        if self._live is not None:
            self._recording_start_requested.emit((self._live, str(path)))

    def stop_recording(self) -> None:
        self._recording_stop_requested.emit()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop live recognition, cancel everything and stop the engine thread; called when the window closes."""
        if self._live is not None:
            self._live.stopping.set()  # the step running now is the last
        self.cancel_load()
        self.cancel_classification()
        for request in list(self._explaining.values()):
            request.cancel.cancel()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("The engine thread did not stop within %d ms", timeout_ms)
        # The engine thread has ended (queued stops with it), so the stream and its log are released from here.
        self.live_worker.close_live()
        if self._live is not None:
            self._live.pipeline.stop()
            self._live = None
