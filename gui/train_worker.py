"""Runs the fine-tuning wizard's engine work (folder scans, thumbnails, training, report export) in its own thread.

Training is a job of its own, beside the engine thread that owns the loaded model: the window stays live and
classifying goes on while a model trains. Requests carry cancel tokens the GUI thread sets directly, because a
busy worker cannot process a queued "cancel" signal.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Event, Progress
from engine.files import copy_folder
from engine.training.dataset import DatasetScan, scan_class_folders
from engine.training.plan import EpochMetrics, TrainPlan
from engine.training.run import CHECKPOINT_FILE, Run, create_run, delete_run, list_runs, open_run
from engine.training.trainer import TrainResult, train_run
from gui.engine_messages import BUG_HINT, BUG_MESSAGE, Failure

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 60_000  # a cancelled run stops after the batch in progress, which can take a while on a CPU
THUMBNAIL_CHUNK = 8  # thumbnails per signal: strips fill in as they decode, without a signal per image
THUMBNAIL_WAIT_S = 0.25  # or sooner when they decode slowly (a phone's HEIC photos: most of a second each)


@dataclass(frozen=True)
class ScanRequest:
    request_id: int
    folder: str
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class ScanProgress:
    request_id: int
    done: int
    total: int


@dataclass(frozen=True)
class ScanFinished:
    request_id: int
    scan: DatasetScan


@dataclass(frozen=True)
class ThumbnailRequest:
    request_id: int
    paths: tuple[str, ...]
    size: int
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class Thumbnail:
    path: str
    pixels: np.ndarray | None  # RGB uint8 (h, w, 3), at most size × size; None when the file cannot be read


@dataclass(frozen=True)
class ThumbnailsDecoded:
    request_id: int
    thumbnails: tuple[Thumbnail, ...]


@dataclass(frozen=True)
class TrainRequest:
    """A new run (plan and scan) or, with `run_folder`, a resumed one; `changes` adjust its plan (e.g. batch size)."""

    request_id: int
    plan: TrainPlan | None = None
    scan: DatasetScan | None = None
    run_folder: str = ""
    changes: tuple[tuple[str, object], ...] = ()
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class TrainingStarted:
    request_id: int
    run_folder: str
    name: str
    plan: TrainPlan
    classes: tuple[str, ...]
    history: tuple[EpochMetrics, ...]  # epochs a resumed run already has
    train_images: int
    val_images: int


@dataclass(frozen=True)
class TrainingEvent:
    request_id: int
    event: object  # StepMetrics | EpochMetrics | Progress | Log, as the engine sent it


@dataclass(frozen=True)
class TrainingFinished:
    request_id: int
    result: TrainResult


@dataclass(frozen=True)
class TrainingStopped:
    """Cancelled or failed; a run that was created can be resumed from its last finished epoch."""

    request_id: int
    run_folder: str  # "" when it stopped before its run folder existed
    epochs_done: int
    failure: Failure


@dataclass(frozen=True)
class RunsListed:
    runs: tuple[Run, ...]  # resumable runs, newest first
    error: str = ""  # why the run the user deleted is still there


@dataclass(frozen=True)
class ExportRequest:
    request_id: int
    source: str
    target: str


@dataclass(frozen=True)
class ReportExported:
    request_id: int
    folder: str


def failure_from(request_id: int, exc: BaseException) -> Failure:
    if isinstance(exc, Cancelled):
        return Failure(request_id, "Cancelled.", cancelled=True)
    if isinstance(exc, UserFacingError):
        return Failure(request_id, exc.message, exc.hint)
    log.error("Unexpected error in the training thread", exc_info=exc)
    return Failure(request_id, BUG_MESSAGE, BUG_HINT, is_bug=True)


class TrainWorker(QObject):
    """Lives in the training thread. Each slot catches everything: a worker that dies silently hangs the wizard."""

    scan_progressed = Signal(object)  # ScanProgress
    scan_finished = Signal(object)  # ScanFinished
    scan_failed = Signal(object)  # Failure
    thumbnails_decoded = Signal(object)  # ThumbnailsDecoded
    runs_listed = Signal(object)  # RunsListed
    training_started = Signal(object)  # TrainingStarted
    training_reported = Signal(object)  # TrainingEvent
    training_finished = Signal(object)  # TrainingFinished
    training_stopped = Signal(object)  # TrainingStopped
    report_exported = Signal(object)  # ReportExported
    export_failed = Signal(object)  # Failure

    @Slot(object)
    def scan(self, request: ScanRequest) -> None:
        try:
            request.cancel.check()

            def on_event(event: Event) -> None:
                if isinstance(event, Progress):
                    self.scan_progressed.emit(ScanProgress(request.request_id, event.done, event.total))

            scan = scan_class_folders(request.folder, on_event, request.cancel)
            self.scan_finished.emit(ScanFinished(request.request_id, scan))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user
            self.scan_failed.emit(failure_from(request.request_id, exc))

    @Slot(object)
    def decode_thumbnails(self, request: ThumbnailRequest) -> None:
        from engine.predict import file_thumbnails

        chunk: list[Thumbnail] = []
        sent = time.monotonic()
        try:
            # None for a file removed or damaged since the scan: shown as a blank tile
            for path, pixels in file_thumbnails(request.paths, request.size, request.cancel):
                chunk.append(Thumbnail(path, pixels))
                if len(chunk) == THUMBNAIL_CHUNK or time.monotonic() - sent >= THUMBNAIL_WAIT_S:
                    self.thumbnails_decoded.emit(ThumbnailsDecoded(request.request_id, tuple(chunk)))
                    chunk, sent = [], time.monotonic()
            if chunk:
                self.thumbnails_decoded.emit(ThumbnailsDecoded(request.request_id, tuple(chunk)))
        except Cancelled:
            return
        except Exception:  # thumbnails are a nicety: a bug here is logged, never fatal
            log.exception("Could not decode thumbnails")

    @Slot()
    def list_resumable_runs(self, error: str = "") -> None:
        try:
            runs = tuple(run for run in list_runs() if run.resumable)
        except Exception:  # an unreadable runs folder just means nothing to resume
            log.exception("Could not list the training runs")
            runs = ()
        self.runs_listed.emit(RunsListed(runs, error))

    @Slot(str)
    def delete_run(self, folder: str) -> None:
        try:
            delete_run(folder)
        except UserFacingError as exc:
            self.list_resumable_runs(" ".join(filter(None, (exc.message, exc.hint))))
        else:
            self.list_resumable_runs()

    @Slot(object)
    def train(self, request: TrainRequest) -> None:
        folder = request.run_folder
        try:
            request.cancel.check()
            if folder:
                run = open_run(folder)
            else:
                run = create_run(request.plan, request.scan)
                folder = str(run.folder)
            plan = TrainPlan.from_dict({**run.plan.to_dict(), **dict(request.changes)})
            self.training_started.emit(TrainingStarted(
                request.request_id, folder, run.name, plan, run.classes, _history(run.folder),
                len(run.train), len(run.val),
            ))

            def on_event(event: object) -> None:
                self.training_reported.emit(TrainingEvent(request.request_id, event))

            result = train_run(folder, on_event, request.cancel, **dict(request.changes))
            self.training_finished.emit(TrainingFinished(request.request_id, result))
        except Exception as exc:  # noqa: BLE001 - cancelled, or a failure the user must see
            self.training_stopped.emit(TrainingStopped(
                request.request_id, folder, _epochs_done(folder), failure_from(request.request_id, exc)
            ))

    @Slot(object)
    def export_report(self, request: ExportRequest) -> None:
        try:
            copied = copy_folder(request.source, request.target, "The report")
            self.report_exported.emit(ReportExported(request.request_id, copied))
        except Exception as exc:  # noqa: BLE001
            self.export_failed.emit(failure_from(request.request_id, exc))


def _history(folder: Path) -> tuple[EpochMetrics, ...]:
    """The epochs a resumed run already has, from its checkpoint, so its curves start where they left off."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        return ()
    try:
        import torch

        # Memory-mapped: only the small history is read, not the weights beside it.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return tuple(EpochMetrics.from_dict(item) for item in state.get("history", []))
    except Exception:  # noqa: BLE001 - the trainer reports a damaged checkpoint itself, in words
        return ()


def _epochs_done(folder: str) -> int:
    if not folder:
        return 0
    try:
        return open_run(folder).epochs_done
    except UserFacingError:
        return 0


class TrainBridge(QObject):
    """The wizard's handle on the training thread: sends requests, holds their cancel tokens, shuts down cleanly.

    Pages connect to `bridge.worker`'s signals with their own bound slots, so Qt queues them onto the GUI thread.
    """

    _scan_requested = Signal(object)
    _thumbnails_requested = Signal(object)
    _runs_requested = Signal()
    _delete_run_requested = Signal(str)
    _train_requested = Signal(object)
    _export_requested = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self.thread = QThread()
        self.thread.setObjectName("training")
        self.worker = TrainWorker()
        self.worker.moveToThread(self.thread)
        self._scan_requested.connect(self.worker.scan)
        self._thumbnails_requested.connect(self.worker.decode_thumbnails)
        self._runs_requested.connect(self.worker.list_resumable_runs)
        self._delete_run_requested.connect(self.worker.delete_run)
        self._train_requested.connect(self.worker.train)
        self._export_requested.connect(self.worker.export_report)
        self._scan: ScanRequest | None = None
        self._thumbnails: dict[str, ThumbnailRequest] = {}
        self._training: TrainRequest | None = None
        self.worker.training_finished.connect(self._training_ended)
        self.worker.training_stopped.connect(self._training_ended)
        self.thread.start()

    @property
    def is_training(self) -> bool:
        return self._training is not None

    @property
    def current_training_id(self) -> int | None:
        return self._training.request_id if self._training else None

    @property
    def current_scan_id(self) -> int | None:
        return self._scan.request_id if self._scan else None

    def request_scan(self, folder: str) -> int:
        """Scan a folder of class folders; a scan still running is superseded (cancelled)."""
        self.cancel_scan()
        self._scan = ScanRequest(next(self._ids), folder)
        self._scan_requested.emit(self._scan)
        return self._scan.request_id

    def cancel_scan(self) -> None:
        if self._scan is not None:
            self._scan.cancel.cancel()

    def request_thumbnails(self, paths: tuple[str, ...], size: int, purpose: str) -> int:
        """Decode thumbnails of `paths`; a request for the same purpose still running is superseded."""
        previous = self._thumbnails.get(purpose)
        if previous is not None:
            previous.cancel.cancel()
        request = ThumbnailRequest(next(self._ids), tuple(paths), size)
        self._thumbnails[purpose] = request
        self._thumbnails_requested.emit(request)
        return request.request_id

    def request_runs(self) -> None:
        """List the runs that can be resumed; answered by runs_listed."""
        self._runs_requested.emit()

    def request_delete_run(self, folder: str) -> None:
        """Delete an unfinished run; answered by runs_listed, without it."""
        self._delete_run_requested.emit(folder)

    def start_training(
        self,
        plan: TrainPlan | None = None,
        scan: DatasetScan | None = None,
        run_folder: str = "",
        **changes,
    ) -> int:
        """Create a run from `plan` and `scan` and train it, or resume the run in `run_folder` with `changes`."""
        if self._training is not None:
            raise RuntimeError("A training run is already in progress")
        self._training = TrainRequest(next(self._ids), plan, scan, str(run_folder), tuple(changes.items()))
        self._train_requested.emit(self._training)
        return self._training.request_id

    def cancel_training(self) -> None:
        """Stop after the batch in progress; the run keeps its last finished epoch and can be resumed."""
        if self._training is not None:
            self._training.cancel.cancel()

    @Slot(object)
    def _training_ended(self, event: TrainingFinished | TrainingStopped) -> None:
        if self._training is not None and event.request_id == self._training.request_id:
            self._training = None

    def request_export(self, source: str, target: str) -> int:
        request = ExportRequest(next(self._ids), str(source), str(target))
        self._export_requested.emit(request)
        return request.request_id

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel everything and stop the thread; True once it has ended. Called when the wizard closes."""
        self.cancel_scan()
        for request in self._thumbnails.values():
            request.cancel.cancel()
        self.cancel_training()
        self.thread.quit()
        stopped = self.thread.wait(timeout_ms)
        if not stopped:
            log.warning("The training thread did not stop within %d ms", timeout_ms)
            _UNFINISHED.append(self.thread)  # a QThread destroyed while running takes the process with it
        self._training = None
        return stopped


_UNFINISHED: list[QThread] = []
