"""Live recognition in the engine thread, one step (one frame) per event so that queued requests run between steps;
and the messages it exchanges with the GUI thread."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.events import Log
from engine.live.capture import SourceStatus
from engine.live.recording import PredictionLog, save_snapshot
from engine.live.sources import Frame, list_cameras
from engine.live.types import LivePrediction
from gui.engine_messages import failure_from

if TYPE_CHECKING:  # imported where they are used, in the engine thread, not at the window's start-up
    from engine.live.pipeline import LivePipeline
    from engine.predict import Classifier

log = logging.getLogger(__name__)
NO_MODEL_MESSAGE = "No model is loaded yet: choose one in the model picker (Model ▸ Choose model…)."


class LiveSession:
    """One live stream. The GUI thread reads the pipeline's newest frame for display (no frames through signals)
    and sets `stopping` to end the steps at once, even while the stop request waits in the engine's queue."""

    def __init__(self, session_id: int, pipeline: LivePipeline) -> None:
        self.session_id = session_id
        self.pipeline = pipeline
        self.stopping = threading.Event()


@dataclass(frozen=True)
class LiveUpdate:
    session_id: int
    prediction: LivePrediction
    model_name: str  # the model that made this prediction


@dataclass(frozen=True)
class LiveState:
    session_id: int
    state: str  # SourceStatus's: "opening", "running", "reconnecting", "ended", "failed", "stopped"; or "no model"
    message: str = ""


@dataclass(frozen=True)
class SnapshotRequest:
    request_id: int
    folder: str
    frame: Frame
    prediction: LivePrediction | None
    model_name: str


@dataclass(frozen=True)
class SnapshotSaved:
    request_id: int
    image_path: str
    json_path: str


@dataclass(frozen=True)
class RecordingState:
    session_id: int
    path: str
    rows: int
    active: bool  # False once the log is closed (toggled off, stream stopped, or a write failed)


class LiveWorker(QObject):
    """Lives in the engine thread beside the EngineWorker, whose model it is given. Each slot catches everything:
    a worker that dies silently hangs the app."""

    cameras_listed = Signal(object)  # tuple[CameraInfo, ...]
    live_predicted = Signal(object)  # LiveUpdate
    live_state_changed = Signal(object)  # LiveState; also emitted from the capture thread (Qt queues it)
    live_failed = Signal(object)  # Failure whose request_id is the session id
    snapshot_saved = Signal(object)  # SnapshotSaved
    snapshot_failed = Signal(object)  # Failure
    recording_changed = Signal(object)  # RecordingState
    recording_failed = Signal(object)  # Failure whose request_id is the session id

    def __init__(self) -> None:
        super().__init__()
        self._classifier: Classifier | None = None
        self._live_classifier: Classifier | None = None  # _classifier tuned to share the CPU with capture
        self._live: LiveSession | None = None
        self._live_paused = False
        self._recording: PredictionLog | None = None
        self._recording_session = 0
        # A zero-delay single shot: the next step runs once the events queued meanwhile (a model load, a
        # snapshot, a stop) have run. A child of the worker, so it moves to the engine thread with it.
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(0)
        self._step_timer.timeout.connect(self._live_step)

    @Slot(object)
    def use_classifier(self, classifier: Classifier) -> None:
        """A model was loaded; a running stream goes on with it."""
        self._classifier, self._live_classifier = classifier, None
        if self._live is not None:  # the new model's classes (maybe fewer or more) start afresh
            self._live.pipeline.reset_smoothing()
            self._schedule_step()

    @Slot()
    def list_cameras(self) -> None:
        try:
            cameras = tuple(list_cameras())
        except Exception:  # no camera list is no reason to fail the Live tab
            log.exception("Could not list the cameras")
            cameras = ()
        self.cameras_listed.emit(cameras)

    @Slot(object)
    def start_live(self, session: LiveSession) -> None:
        if self._live is not None and self._live is not session:
            self._end_live(self._live)
        if session.stopping.is_set():
            return  # stopped before it started
        self._live, self._live_paused = session, False
        try:
            session.pipeline.start()
        except Exception as exc:  # noqa: BLE001
            self._live = None
            self.live_failed.emit(failure_from(session.session_id, exc))
            return
        if self._classifier is None:
            self.live_state_changed.emit(LiveState(session.session_id, "no model", NO_MODEL_MESSAGE))
        self._schedule_step()

    @Slot(object)
    def stop_live(self, session: LiveSession) -> None:
        self._end_live(session)

    @Slot(bool)
    def set_live_paused(self, paused: bool) -> None:
        self._live_paused = paused
        if self._live is not None:  # a paused video file stays where it is; Resume plays on from there
            (self._live.pipeline.pause if paused else self._live.pipeline.resume)()
        self._schedule_step()

    @Slot(object)
    def start_recording(self, request: tuple[LiveSession, str]) -> None:
        session, path = request
        self._close_recording()
        if session is not self._live or session.stopping.is_set():
            return
        try:
            self._recording = PredictionLog(path, session.pipeline.settings.topk)
        except Exception as exc:  # noqa: BLE001
            self.recording_failed.emit(failure_from(session.session_id, exc))
            return
        self._recording_session = session.session_id
        self.recording_changed.emit(RecordingState(session.session_id, path, 0, True))

    @Slot()
    def stop_recording(self) -> None:
        self._close_recording()

    @Slot(object)
    def save_snapshot(self, request: SnapshotRequest) -> None:
        try:
            image, data = save_snapshot(request.folder, request.frame, request.prediction, request.model_name)
            self.snapshot_saved.emit(SnapshotSaved(request.request_id, str(image), str(data)))
        except Exception as exc:  # noqa: BLE001
            self.snapshot_failed.emit(failure_from(request.request_id, exc))

    def live_sink(self, session_id: int):
        """The pipeline's event sink. It is called on the capture thread: emitting there is safe, Qt queues it."""

        def on_event(event: object) -> None:
            if isinstance(event, SourceStatus):
                self.live_state_changed.emit(LiveState(session_id, event.state, event.message))
            elif isinstance(event, Log):
                log.log(logging.WARNING if event.level != "info" else logging.INFO, "Live: %s", event.text)

        return on_event

    def close_live(self) -> None:
        """Release the stream and the log; only for the bridge once the engine thread has ended."""
        if self._live is not None:
            self._end_live(self._live)

    def _schedule_step(self) -> None:
        live = self._live
        if live is not None and not live.stopping.is_set() and not self._live_paused and self._classifier is not None:
            self._step_timer.start()

    @Slot()
    def _live_step(self) -> None:
        session, classifier = self._live, self._classifier
        if session is None or session.stopping.is_set() or self._live_paused or classifier is None:
            return
        try:
            prediction = session.pipeline.step(self._classifier_for_live(classifier))
        except Exception as exc:  # noqa: BLE001 - a failing model stops the stream with a message, not a hang
            self.live_failed.emit(failure_from(session.session_id, exc))
            self._end_live(session)
            return
        if prediction is not None:
            self.live_predicted.emit(LiveUpdate(session.session_id, prediction, classifier.loaded.name))
            self._record(prediction)
        elif session.pipeline.finished:
            return  # the source ended or failed and its last frame is classified: the GUI stops the stream
        self._schedule_step()

    def _classifier_for_live(self, classifier: Classifier) -> Classifier:
        """The model tuned to share the CPU with capture and display; for ONNX Runtime a second session, made once."""
        if self._live_classifier is None:
            self._live_classifier = classifier.for_live()
        return self._live_classifier

    def _record(self, prediction: LivePrediction) -> None:
        if self._recording is None:
            return
        try:
            self._recording.write(prediction)
        except Exception as exc:  # noqa: BLE001 - e.g. the disk filled up: the rows so far are kept
            self.recording_failed.emit(failure_from(self._recording_session, exc))
            self._close_recording()

    def _close_recording(self) -> None:
        recording, self._recording = self._recording, None
        if recording is None:
            return
        state = RecordingState(self._recording_session, str(recording.path), recording.rows, False)
        try:
            recording.close()
        except Exception as exc:  # noqa: BLE001
            self.recording_failed.emit(failure_from(self._recording_session, exc))
            return
        self.recording_changed.emit(state)

    def _end_live(self, session: LiveSession) -> None:
        session.stopping.set()
        if session is self._live:
            self._close_recording()
            self._live, self._live_classifier = None, None
        session.pipeline.stop()
