"""Where the Live tab's pictures come from: the source picker (cameras, and the video files and stream addresses
chosen in its dialogs), the source each choice opens, and the preferences the Live tab remembers between runs."""
from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QInputDialog, QSizePolicy, QWidget

from engine.live.sources import (
    STREAM_SCHEMES,
    VIDEO_EXTENSIONS,
    CameraInfo,
    CameraSource,
    FrameSource,
    StreamSource,
    VideoFileSource,
)
from gui.settings import user_settings_store

RECENT_SOURCES = 8  # videos and streams kept in the source list
RESOLUTIONS = (
    ("Camera's default", None),
    ("640 × 480", (640, 480)),
    ("1280 × 720", (1280, 720)),
    ("1920 × 1080", (1920, 1080)),
)


@dataclass
class LivePreferences:
    """What the Live tab remembers between runs, in a "live" group of the user's settings file."""

    snapshot_folder: str = ""
    recording_folder: str = ""
    video_folder: str = ""
    smoothing: float = 0.5
    mirror: bool = False
    recent_sources: str = "[]"  # JSON: [kind, target, label] of the videos and streams chosen lately, newest first

    @classmethod
    def load(cls) -> LivePreferences:
        store, defaults = user_settings_store(), cls()
        values = {}
        for key, default in asdict(defaults).items():
            value = store.value(f"live/{key}", default)
            try:  # INI files give every value back as text
                values[key] = (
                    value.lower() == "true"
                    if isinstance(default, bool) and isinstance(value, str)
                    else type(default)(value)
                )
            except (TypeError, ValueError):
                values[key] = default
        values["smoothing"] = min(max(values["smoothing"], 0.0), 0.95)
        return cls(**values)

    def save(self) -> None:
        store = user_settings_store()
        for key, value in asdict(self).items():
            store.setValue(f"live/{key}", value)
        store.sync()


@dataclass(frozen=True)
class SourceChoice:
    kind: str  # "camera", "file" or "url"
    target: str  # the camera index, the file's path or the stream's address
    label: str

    @property
    def worth_remembering(self) -> bool:
        """Video files, and streams whose address holds no secret: a settings file is no place for a password or
        an access token (those streams stay in the list until the app closes)."""
        if self.kind == "file":
            return True
        parts = urllib.parse.urlsplit(self.target)
        return self.kind == "url" and parts.password is None and not parts.query


def remembered_sources(prefs: LivePreferences) -> list[SourceChoice]:
    """The videos (those still there) and streams chosen in earlier runs, newest first."""
    try:
        entries = json.loads(prefs.recent_sources)
        choices = [SourceChoice(str(kind), str(target), str(label)) for kind, target, label in entries]
    except (ValueError, TypeError):
        return []  # a damaged setting costs only the list
    return [c for c in choices if c.worth_remembering and (c.kind != "file" or os.path.isfile(c.target))]


def open_source(choice: SourceChoice, resolution: tuple[int, int] | None, loop: bool) -> FrameSource:
    """The source a choice streams from: a camera asked for `resolution` (None: its default), or a video file that
    plays again from the start when it ends if `loop`, or a stream."""
    if choice.kind == "camera":
        return CameraSource(int(choice.target), *(resolution or (None, None)))
    if choice.kind == "file":
        return VideoFileSource(choice.target, loop=loop)
    return StreamSource(choice.target)


class SourcePicker(QComboBox):
    """Cameras, the videos and streams chosen so far, and the items that choose new ones in a dialog."""

    source_chosen = Signal(object)  # SourceChoice
    cameras_wanted = Signal()  # "Look for cameras again": the view asks the engine thread
    address_rejected = Signal(str, str)  # message, hint: what the user typed is no stream address

    def __init__(self, prefs: LivePreferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("Where the pictures come from: a camera, a video file or a network stream")
        # Narrow at least (the Live tab fits a window beside the Models panel on a 1024-pixel screen), wider
        # when there is room, never wider than a long file name needs.
        self.setMinimumContentsLength(12)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMaximumWidth(self.fontMetrics().horizontalAdvance("x") * 48)
        self.prefs = prefs  # the video folder is remembered
        self._cameras: list[CameraInfo] | None = None  # None until listed
        self._chosen = remembered_sources(prefs)[:RECENT_SOURCES]
        self._previous = -1
        self.activated.connect(self._on_activated)
        self._rebuild(None)

    @property
    def current_choice(self) -> SourceChoice | None:
        data = self.currentData()
        return data if isinstance(data, SourceChoice) else None

    def set_cameras(self, cameras: list[CameraInfo]) -> None:
        self._cameras = list(cameras)
        self._rebuild(self.current_choice)

    def add_choice(self, choice: SourceChoice) -> None:
        """Add (or move to the top) a video or stream the user chose, and select it; remembered for later runs."""
        self._chosen = [choice, *(c for c in self._chosen if c.target != choice.target)][:RECENT_SOURCES]
        kept = [[c.kind, c.target, c.label] for c in self._chosen if c.worth_remembering]
        self.prefs.recent_sources = json.dumps(kept)
        self.prefs.save()
        self._rebuild(choice)
        self.source_chosen.emit(choice)

    def open_video_file(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(VIDEO_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a video", self.prefs.video_folder, f"Videos ({patterns});;All files (*)"
        )
        if path:
            self.prefs.video_folder = str(Path(path).parent)
            self.prefs.save()
            self.add_choice(SourceChoice("file", path, Path(path).name))

    def open_stream_url(self) -> None:
        url, accepted = QInputDialog.getText(
            self, "Stream URL", "Address of the stream (rtsp://…, http://…; a user name and password may go in it):"
        )
        url = url.strip()
        if not accepted or not url:
            return
        if "://" not in url or url.split("://", 1)[0].lower() not in STREAM_SCHEMES:
            self.address_rejected.emit(
                f'"{url}" is not a stream address.',
                "Stream addresses start with rtsp://, http:// or https://, e.g. rtsp://192.168.1.20:554/stream1.",
            )
            return
        self.add_choice(SourceChoice("url", url, StreamSource(url).description))  # no password shown

    def _rebuild(self, keep: SourceChoice | None) -> None:
        self.blockSignals(True)
        self.clear()
        if self._cameras is None:
            self._add_inert("Looking for cameras…")
        elif not self._cameras:
            self._add_inert("No camera found")
        for camera in self._cameras or ():
            label = camera.name if camera.name == f"Camera {camera.index}" else f"Camera {camera.index} ({camera.name})"
            self.addItem(label, SourceChoice("camera", str(camera.index), label))
        for choice in self._chosen:
            self.addItem(choice.label, choice)
            if choice.kind == "file":  # the whole path; a stream's address may hold a password
                self.setItemData(self.count() - 1, choice.target, Qt.ItemDataRole.ToolTipRole)
        self.insertSeparator(self.count())
        self.addItem("Video file…", "file")
        self.addItem("Stream URL…", "url")
        self.addItem("Look for cameras again", "cameras")
        wanted = next((i for i in range(self.count()) if self.itemData(i) == keep), -1) if keep else -1
        first_source = next((i for i in range(self.count()) if isinstance(self.itemData(i), SourceChoice)), 0)
        self.setCurrentIndex(wanted if wanted >= 0 else first_source)
        self._previous = self.currentIndex()
        self.blockSignals(False)

    def _add_inert(self, text: str) -> None:
        self.addItem(text)
        self.model().item(self.count() - 1).setEnabled(False)

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if isinstance(data, SourceChoice):
            if index != self._previous:
                self._previous = index
                self.source_chosen.emit(data)
            return
        self.setCurrentIndex(self._previous)  # an action item is never the selection
        if data == "file":
            self.open_video_file()
        elif data == "url":
            self.open_stream_url()
        elif data == "cameras":
            self.cameras_wanted.emit()
