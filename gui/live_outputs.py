"""What the Live tab saves or sends on: snapshots of the picture on screen with its prediction, CSV recordings of
predictions, and the picture on screen sent to the Classify tab for a closer look."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFileDialog, QPushButton, QToolButton

from gui.engine_messages import Failure
from gui.live_widgets import bgr_to_qimage
from gui.live_worker import RecordingState, SnapshotSaved
from gui.result_actions import open_in_system
from gui.status import ElidedLabel

if TYPE_CHECKING:
    from gui.live_view import LiveView


class LiveOutputs(QObject):
    """The Snapshot, Record and Look closer buttons of a LiveView, the note that says what they saved, and the
    recording's state.

    The view lays the widgets out and calls `refresh` when its own controls change; `changed` asks it to do so when
    a recording starts or stops.
    """

    changed = Signal()
    look_closer = Signal(object)  # QImage: what the model saw of the picture on screen, for the Classify tab

    def __init__(self, view: LiveView) -> None:
        super().__init__(view)
        self.view = view
        self.recording_path = ""  # the CSV file being written, "" when not recording
        self.snapshot_button = QToolButton()
        self.snapshot_button.setText("Snapshot")
        self.snapshot_button.setToolTip("Save the picture on screen (PNG) and its prediction (JSON)")
        self.snapshot_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.snapshot_button.clicked.connect(self.take_snapshot)
        self.snapshot_button.addAction("Change snapshot folder…").triggered.connect(self.choose_snapshot_folder)
        self.snapshot_button.addAction("Show snapshot folder").triggered.connect(self._show_snapshot_folder)
        self.record_button = QPushButton()
        self.record_button.setToolTip("Write every prediction to a CSV file while the stream runs")
        self.record_button.clicked.connect(self.toggle_recording)
        self.look_button = QPushButton("Look closer")
        self.look_button.setToolTip(
            "Pause, and classify the picture on screen (what is in the crop box, when it is on) in the Classify tab:\n"
            "all its top classes, and Where it looked shows which parts of it they depend on"
        )
        self.look_button.clicked.connect(self.send_to_classify)
        self.note = ElidedLabel()
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        worker = view.bridge.live_worker
        worker.snapshot_saved.connect(self._on_snapshot_saved)
        worker.snapshot_failed.connect(self._on_failure)
        worker.recording_changed.connect(self._on_recording_changed)
        worker.recording_failed.connect(self._on_recording_failed)

    def refresh(self, running: bool, has_frame: bool) -> None:
        """Enable and label the buttons for a stream that is `running` or not, with a picture on screen or not."""
        self.snapshot_button.setEnabled(has_frame)
        self.look_button.setEnabled(has_frame)
        self.record_button.setText("■ Stop recording" if self.recording_path else "● Record…")
        self.record_button.setEnabled(running or bool(self.recording_path))

    def stream_stopped(self) -> None:
        self.recording_path = ""  # the engine closes the log with the stream

    # ----- snapshots -------------------------------------------------------------------------------------

    def take_snapshot(self) -> None:
        """Save the frame behind the prediction on screen as PNG, and the prediction as JSON, in the snapshot folder."""
        frame, prediction, model_name = self.view.on_screen()
        if frame is None:
            return
        folder = self.view.prefs.snapshot_folder or self.choose_snapshot_folder()
        if folder:
            self.view.bridge.request_snapshot(folder, frame, prediction, model_name)
            self.note.setText("Saving the snapshot…")

    def choose_snapshot_folder(self) -> str:
        prefs = self.view.prefs
        start = prefs.snapshot_folder or str(_pictures_folder())
        folder = QFileDialog.getExistingDirectory(self.view, "Choose a folder for snapshots", start)
        if folder:
            prefs.snapshot_folder = folder
            prefs.save()
        return folder

    def _show_snapshot_folder(self) -> None:
        if self.view.prefs.snapshot_folder:
            open_in_system(self.view.prefs.snapshot_folder,
                           lambda message, hint: self.note.setText(f"{message} {hint}"))
        else:
            self.choose_snapshot_folder()

    @Slot(object)
    def _on_snapshot_saved(self, saved: SnapshotSaved) -> None:
        image = Path(saved.image_path)
        self.note.setText(f"Saved {image.name} (+ .json) in {image.parent.name or image.parent}")
        self.note.setToolTip(f"{saved.image_path}\n{saved.json_path}")

    @Slot(object)
    def _on_failure(self, failure: Failure) -> None:
        self.note.clear()
        self.view.banner.show_message(failure.message, failure.hint)

    def send_to_classify(self) -> None:
        """Freeze the stream and send what the model sees of the picture on screen (the crop box's part, already
        mirrored) to the Classify tab: the still-image path gives it the same input numbers as the live one."""
        from engine.live.pipeline import crop_to_roi  # deferred: it imports numpy, which start-up goes without

        frame = self.view.on_screen()[0]
        if frame is None:
            return
        self.view.set_paused(True)
        pixels = crop_to_roi(frame.image, self.view.live_settings().roi)
        self.look_closer.emit(bgr_to_qimage(pixels, pixels.shape[1], pixels.shape[0]))

    # ----- recording -------------------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        if self.recording_path:
            self.view.bridge.stop_recording()
            return
        folder = Path(self.view.prefs.recording_folder or _pictures_folder().parent)
        default = folder / f"live-predictions-{datetime.now():%Y-%m-%d-%H%M%S}.csv"
        path, _ = QFileDialog.getSaveFileName(
            self.view, "Record predictions to", str(default), "CSV spreadsheet (*.csv)"
        )
        if path:
            self.start_recording(path if path.lower().endswith(".csv") else path + ".csv")

    def start_recording(self, path: str) -> None:
        """Log every prediction of this stream to `path` (CSV) until stopped, or until the stream stops."""
        if self.view.running:
            self.view.prefs.recording_folder = str(Path(path).parent)
            self.view.prefs.save()
            self.recording_path = path
            self.view.bridge.start_recording(path)
            self.changed.emit()

    @Slot(object)
    def _on_recording_changed(self, state: RecordingState) -> None:
        name = Path(state.path).name
        if not state.active and state.path == self.recording_path:
            self.recording_path = ""
        self.note.setText(
            f"Recording predictions to {name}" if state.active else f"Recorded {state.rows} predictions to {name}"
        )
        self.note.setToolTip(state.path)
        self.changed.emit()

    @Slot(object)
    def _on_recording_failed(self, failure: Failure) -> None:
        self.recording_path = ""
        self._on_failure(failure)
        self.changed.emit()


def _pictures_folder() -> Path:
    pictures = Path.home() / "Pictures"
    return pictures if pictures.is_dir() else Path.home()
