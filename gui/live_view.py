"""The Live tab: a webcam, a video file or a network stream classified as it plays, the prediction over the picture."""
from __future__ import annotations

import collections
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from engine.live.sources import Frame, FrameSource
from engine.live.types import LivePrediction, LiveSettings
from gui.engine_worker import EngineBridge
from gui.engine_messages import Failure
from gui.image_input import VideoDrops
from gui.live_outputs import LiveOutputs
from gui.live_sources import RESOLUTIONS, LivePreferences, SourceChoice, SourcePicker, open_source
from gui.live_widgets import FrameRate, LiveVideo, Roi, bgr_to_qimage, centre_roi, stats_text
from gui.live_worker import LiveSession, LiveState, LiveUpdate
from gui.status import STATE_COLOURS, ElidedLabel, MessageBanner

TOPK = 5
MAX_DISPLAY_HZ = 60
STATS_INTERVAL_MS = 250  # numbers that change 30 times a second cannot be read
RECENT_FRAMES = 16  # kept so that Pause and Snapshot show the very frame the prediction on screen was made from
PLACEHOLDER = "Choose a camera, a video file or a stream, then press Start."
WARNING_COLOUR = "#b26a00"


def display_interval_ms(fps: float) -> int:
    """Polling at twice the source's rate shows every frame without beating against it; 60 Hz at most."""
    rate = min(2 * fps, MAX_DISPLAY_HZ) if fps > 0 else MAX_DISPLAY_HZ
    return max(int(1000 / rate), 1)


class LiveView(QWidget):
    """Controls, the video surface and the stream's lifecycle on the GUI side.

    Frames never travel through signals: a display timer takes the pipeline's newest frame (latest frame wins) and
    repaints only when a new one arrived. Predictions and source states arrive as small frozen dataclasses.
    """

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.prefs = LivePreferences.load()
        self.state = "idle"  # or the stream's: "opening", "running", "reconnecting", "ended", "failed", "stopped"
        self.paused = False
        self._status_message = ""  # the engine's words on the stream's state
        self._session: LiveSession | None = None
        self._source: FrameSource | None = None
        self._prediction: LivePrediction | None = None
        self._model_name = ""
        self._latency_ms: float | None = None
        self._shown_frame: Frame | None = None
        self._recent: collections.OrderedDict[int, Frame] = collections.OrderedDict()
        self._rate = FrameRate()
        self._roi: Roi | None = None
        self._cameras_requested = False
        self._build()
        VideoDrops(self, self.play_files)
        self.display_timer = QTimer(self)
        self.display_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.display_timer.timeout.connect(self._show_newest_frame)
        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(STATS_INTERVAL_MS)
        self.stats_timer.timeout.connect(self._show_stats)
        worker = bridge.live_worker
        worker.cameras_listed.connect(self._on_cameras_listed)
        worker.live_state_changed.connect(self._on_state)
        worker.live_predicted.connect(self._on_prediction)
        worker.live_failed.connect(self._on_live_failed)
        self._refresh()

    def _build(self) -> None:
        self.source_picker = SourcePicker(self.prefs)
        self.source_picker.source_chosen.connect(self._restart_if_running)
        self.source_picker.cameras_wanted.connect(self.bridge.request_cameras)
        self.resolution_combo = QComboBox()
        for text, size in RESOLUTIONS:
            self.resolution_combo.addItem(text, size)
        self.resolution_combo.setToolTip("The picture size to ask the camera for; cameras pick the nearest they have")
        self.resolution_combo.activated.connect(self._restart_if_running)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setToolTip("Play the video again from the start when it ends (off: stop at the end)")
        self.start_button = _button("", self.toggle_running)
        self.pause_button = _button("Freeze the picture and its prediction", self.set_paused)
        self.pause_button.setCheckable(True)
        self.outputs = LiveOutputs(self)  # Snapshot, Record and the note saying what they saved
        self.outputs.changed.connect(self._refresh)
        self.snapshot_button, self.record_button = self.outputs.snapshot_button, self.outputs.record_button
        self.note = self.outputs.note
        self.banner = MessageBanner()
        self.source_picker.address_rejected.connect(self.banner.show_message)
        self.video = LiveVideo()
        self.video.set_placeholder(PLACEHOLDER)
        self.video.roi_changed.connect(self._set_roi)
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 95)
        self.smoothing_slider.setValue(round(self.prefs.smoothing * 100))
        self.smoothing_slider.setMinimumWidth(80)  # stays usable when the status beside it is long
        self.smoothing_slider.setMaximumWidth(180)
        self.smoothing_slider.setToolTip("Averages predictions over recent frames: steadier labels, slower to change")
        self.smoothing_slider.valueChanged.connect(self._send_settings)
        self.smoothing_value = QLabel()
        self.smoothing_value.setMinimumWidth(self.smoothing_value.fontMetrics().horizontalAdvance("0.95") + 4)
        self.mirror_check = QCheckBox("Mirror")
        self.mirror_check.setChecked(self.prefs.mirror)
        self.mirror_check.setToolTip("Flip the picture left to right, as front cameras are usually shown")
        self.mirror_check.toggled.connect(self._send_settings)
        self.crop_check = QCheckBox("Crop to box")
        self.crop_check.setToolTip(
            "Classify only what is inside the box (drag it or its corners); off: the whole frame"
        )
        self.crop_check.toggled.connect(self._on_crop_toggled)
        self.status_label = ElidedLabel()  # a long file name or address must not widen the window
        top = _row(
            QLabel("Source:"),
            self.source_picker,
            self.resolution_combo,
            self.loop_check,
            1,
            self.start_button,
            self.pause_button,
            self.snapshot_button,
            self.record_button,
        )
        top.setStretchFactor(self.source_picker, 1)  # shares the spare width with the gap, up to its maximum
        bottom = _row(
            QLabel("Smoothing"),
            self.smoothing_slider,
            self.smoothing_value,
            self.mirror_check,
            self.crop_check,
            self.outputs.look_button,
            self.note,
            1,
            self.status_label,
        )
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.video, 1)
        layout.addLayout(bottom)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._cameras_requested:  # only once the user looks: some systems open each camera to list it
            self._cameras_requested = True
            self.bridge.request_cameras()

    # ----- starting and stopping ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._session is not None

    def toggle_running(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        """Stream the chosen source; trouble opening it comes back as a banner, never a frozen window."""
        choice = self.source_picker.current_choice
        if choice is None:
            return
        self.stop()
        self.banner.hide()
        self._source = self._make_source(choice)
        self._session = self.bridge.start_live(self._source, self.live_settings())
        self._prediction = self._latency_ms = self._shown_frame = None
        self._recent.clear()
        self._rate = FrameRate()
        self.video.clear()
        self.video.set_placeholder(f"Opening {self._source.description}…")
        self.state = "opening"
        self.display_timer.start(display_interval_ms(0))
        self.stats_timer.start()
        self._refresh()

    def stop(self, state: str = "stopped") -> None:
        """Stop the stream (the engine releases the camera); the last picture and prediction stay on screen."""
        if self._session is None:
            return
        self.bridge.stop_live()
        self._session = None
        self.display_timer.stop()
        self.stats_timer.stop()
        self.paused = False
        self.video.set_badge("")
        self.video.set_placeholder(PLACEHOLDER)
        self.state = state
        self.outputs.stream_stopped()
        self._refresh()

    def shutdown(self) -> None:
        """The window is closing: stop the stream (the bridge's shutdown then joins the capture thread)."""
        self.stop()
        self.prefs.save()

    def play_files(self, paths: list[str]) -> None:
        """Play video files dropped on the window: the first at once, the others wait in the source list."""
        self.stop()
        for path in reversed(paths):
            self.source_picker.add_choice(SourceChoice("file", path, Path(path).name))
        self.prefs.video_folder = str(Path(paths[0]).parent)
        self.start()

    def _make_source(self, choice: SourceChoice) -> FrameSource:
        return open_source(choice, self.resolution_combo.currentData(), self.loop_check.isChecked())

    def _restart_if_running(self) -> None:
        if self.running:
            self.start()
        self._refresh()

    # ----- what the engine says -----------------------------------------------------------------------

    def _is_current(self, session_id: int) -> bool:
        return self._session is not None and session_id == self._session.session_id

    @Slot(object)
    def _on_state(self, event: LiveState) -> None:
        if not self._is_current(event.session_id):
            return  # a stream stopped meanwhile: its last words change nothing
        if event.state == "no model":
            self.video.show_notice(event.message)
            return
        self._status_message = event.message
        if event.state in ("ended", "failed"):
            self.stop(event.state)
            if event.state == "failed":
                self.banner.show_message(event.message)
            return
        self.state = event.state
        self.video.set_badge("Reconnecting…" if event.state == "reconnecting" else "")
        if event.state == "running" and self._source is not None:
            self.display_timer.setInterval(display_interval_ms(self._source.fps))  # known once open
        self._refresh()

    @Slot(object)
    def _on_prediction(self, update: LiveUpdate) -> None:
        if not self._is_current(update.session_id) or self.paused:
            return  # one made just before Pause would not match the frozen picture
        self._prediction, self._model_name = update.prediction, update.model_name
        if update.prediction.frame_index not in self._recent:
            self._hold_newest()  # most often that very frame: Pause and Snapshot can then show it
        # Capture to label on screen, measured where the label is shown (perf_counter is the same in every thread).
        self._latency_ms = (time.perf_counter() - update.prediction.captured_at) * 1000
        self.video.show_prediction(update.prediction.top, update.model_name)

    @Slot(object)
    def _on_live_failed(self, failure: Failure) -> None:
        if self._is_current(failure.request_id):
            self.stop("failed")
            self.banner.show_message(failure.message, failure.hint)

    @Slot(object)
    def _on_cameras_listed(self, cameras: tuple) -> None:
        self.source_picker.set_cameras(list(cameras))
        self._refresh()

    # ----- the picture ---------------------------------------------------------------------------------

    def _show_newest_frame(self) -> None:
        if self._session is None or self.paused or not self.video.isVisible():
            return
        self._hold_newest()
        newest = self._recent[next(reversed(self._recent))] if self._recent else None
        if newest is not None and newest.index != self.video.frame_index:
            first = self._shown_frame is None
            self._show(newest)
            if first:
                self._refresh()  # the frame's size is known now: the status line shows it

    def _hold_newest(self) -> None:
        """Keep the pipeline's newest frame among the recent ones, if it is new."""
        pipeline = self._session.pipeline if self._session else None
        newest = pipeline.mailbox.peek() if pipeline else None  # cheap, where latest_frame() copies to mirror
        if pipeline is None or newest is None or newest.index in self._recent:
            return
        frame = pipeline.latest_frame()
        self._rate.add(frame)
        self._recent[frame.index] = frame
        while len(self._recent) > RECENT_FRAMES:
            self._recent.popitem(last=False)

    def _show(self, frame: Frame) -> None:
        self._shown_frame = frame
        ratio = self.video.devicePixelRatioF()  # full detail on high-DPI screens
        image = bgr_to_qimage(frame.image, int(self.video.width() * ratio), int(self.video.height() * ratio))
        self.video.show_frame(image, frame.index)
        if self.crop_check.isChecked() and self._roi is None:
            self._set_roi(self._default_roi())

    def _show_stats(self) -> None:
        if not self.paused:
            self.video.set_stats(stats_text(self._rate.fps, self._prediction, self._latency_ms))

    def _predicted_frame(self) -> Frame | None:
        """The frame the prediction on screen was made from, when held; else the newest (never older than it)."""
        if self._prediction is not None and self._prediction.frame_index in self._recent:
            return self._recent[self._prediction.frame_index]
        return self._recent[next(reversed(self._recent))] if self._recent else self._shown_frame

    def on_screen(self) -> tuple[Frame | None, LivePrediction | None, str]:
        """What a snapshot saves: the frame behind the prediction on screen, that prediction and its model's name."""
        return self._predicted_frame(), self._prediction, self._model_name

    def set_paused(self, paused: bool) -> None:
        """Freeze the picture and its prediction (the engine stops classifying meanwhile), or go on."""
        self.paused = paused and self.running
        self.bridge.set_live_paused(self.paused)
        self._hold_newest()
        frame = self._predicted_frame()
        if self.paused and frame is not None and frame is not self._shown_frame:
            self._show(frame)
        self.video.set_badge("❚❚ Paused" if self.paused else "")
        self._refresh()

    # ----- settings and the crop box -----------------------------------------------------------------

    def live_settings(self) -> LiveSettings:
        roi = self._roi if self.crop_check.isChecked() else None
        return LiveSettings(TOPK, self.smoothing_slider.value() / 100, roi, self.mirror_check.isChecked())

    def _send_settings(self) -> None:
        self.prefs.smoothing, self.prefs.mirror = self.smoothing_slider.value() / 100, self.mirror_check.isChecked()
        self.bridge.set_live_settings(self.live_settings())
        self._refresh()

    def _on_crop_toggled(self, checked: bool) -> None:
        if checked and self._roi is None and self._shown_frame is not None:
            self._roi = self._default_roi()
        self.video.set_roi(self._roi if checked else None)
        self._send_settings()

    def _default_roi(self) -> Roi:
        height, width = self._shown_frame.image.shape[:2] if self._shown_frame is not None else (1, 1)
        return centre_roi(width, height)

    def _set_roi(self, roi: Roi) -> None:
        self._roi = roi
        self.video.set_roi(roi)
        self._send_settings()

    # ----- what the controls show ---------------------------------------------------------------------

    def _refresh(self) -> None:
        choice, running = self.source_picker.current_choice, self.running
        self.start_button.setText("■ Stop" if running else "▶ Start")
        self.start_button.setToolTip(
            "Stop the stream and release the camera" if running else "Start classifying the chosen source"
        )
        self.start_button.setEnabled(running or choice is not None)
        self.pause_button.setEnabled(running)
        self.pause_button.setChecked(self.paused)
        self.pause_button.setText("▶ Resume" if self.paused else "❚❚ Pause")
        self.outputs.refresh(running, self._shown_frame is not None)
        self.resolution_combo.setVisible(choice is not None and choice.kind == "camera")
        self.loop_check.setVisible(choice is not None and choice.kind == "file")
        self.loop_check.setEnabled(not running)  # a file source loops or not from its start
        self.smoothing_value.setText(f"{self.smoothing_slider.value() / 100:.2f}")
        text, colour = self._status()
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {colour};" if colour else "")

    def _status(self) -> tuple[str, str]:
        """The status line and its colour, e.g. "● Live · Camera 0 (Integrated Webcam) · 640×480"."""
        description = self._source.description if self._source else ""
        if self.state == "opening":
            return f"Opening {description}…", ""
        if self.state == "reconnecting":
            return self._status_message, WARNING_COLOUR
        if self.state == "running":
            size = ""
            if self._shown_frame is not None:
                height, width = self._shown_frame.image.shape[:2]
                size = f" · {width}×{height}"
            return f"{'❚❚ Paused' if self.paused else '● Live'} · {description}{size}", STATE_COLOURS["ready"]
        if self.state == "ended":
            return f"{self._status_message} Press Start to play it again.", ""
        if self.state == "failed":
            return f"Could not stream {description}", STATE_COLOURS["error"]
        return ("Stopped", "") if self.state == "stopped" else ("", "")


def _button(tooltip: str, slot) -> QPushButton:
    button = QPushButton()
    button.setToolTip(tooltip)
    button.clicked.connect(slot)
    return button


def _row(*items: QWidget | int) -> QHBoxLayout:
    """Widgets side by side; a number is a stretch."""
    row = QHBoxLayout()
    for item in items:
        if isinstance(item, int):
            row.addStretch(item)
        else:
            row.addWidget(item)
    return row

