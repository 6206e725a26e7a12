"""The classify view: drop, open or paste pictures and read what the loaded model sees in them."""
from __future__ import annotations

import os
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.live.sources import video_files
from engine.results import ImageResult
from gui.engine_worker import EngineBridge
from gui.engine_messages import BatchFinished, BatchProgress, ClassifiedImage, Failure
from gui.image_input import DropZone, invitation_page, local_paths, model_paths, paths_in_text, web_urls
from gui.pictures_in_memory import PicturesInMemory
from gui.result_widgets import ResultCard, SetProgress, SetProgressBar
from gui.results_export import EXPORT_FILTERS, export_in_background, results_exporter, with_export_suffix
from gui.results_table import BatchResults, ResultsTableModel
from gui.sort_dialog import SortDialog
from gui.status import ElidedLabel, MessageBanner
from gui.where_it_looked import WhereItLooked

THUMBNAIL_SIZE = 192
TOPK = 5
FLUSH_INTERVAL_MS = 100  # rows reach the table ten times a second at most: live, yet cheap for thousands


class ClassifyView(QWidget):
    """Drop zone, single-image result card and live batch table, fed by the engine worker's batch signals.

    The requests this view made since its last fresh set form one "set": their results share the table,
    the progress bar and the export.
    """

    folder_used = Signal(str)
    videos_dropped = Signal(list)  # video files dropped or opened here: the window plays them in the Live tab
    model_dropped = Signal(str)  # a weights file or model bundle dropped here: the window loads it
    # Emitted on the GUI thread once every request of the set has ended (done, cancelled or failed) and the view
    # shows it. Wait on this, not on the worker's signals: those fire on the engine thread before the view updates.
    set_finished = Signal()
    export_finished = Signal(bool)  # an export ended (True: saved), and the note or the banner says so

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = ResultsTableModel(self)
        self._recent_folder = ""
        self._pending: list[int] = []  # this set's requests, in order: the first runs, the rest wait in the queue
        self._buffer: list[ImageResult] = []  # results waiting for the next chunk into the table
        self._total = 0
        self._received = 0
        self._cancelling = False
        self._cancelled = False
        self._started_at = 0.0
        self._seconds = 0.0
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._exporting: Future | None = None
        results_exporter().done.connect(self._export_done, Qt.ConnectionType.QueuedConnection)
        self.in_memory = PicturesInMemory(self)
        self.in_memory.ready.connect(lambda name, data: self._request(pasted=((name, data),)))
        self.pasted = self.in_memory.kept
        self._build()
        self.in_memory.failed.connect(self.banner.show_message)
        self.in_memory.progressed.connect(self._show_download)
        worker = bridge.worker
        worker.batch_started.connect(self._on_batch_started)
        worker.image_classified.connect(self._on_image_classified)
        worker.batch_finished.connect(self._on_batch_finished)
        worker.batch_failed.connect(self._on_batch_failed)
        self._refresh()

    def _build(self) -> None:
        self.open_button = _button("Open…", "Choose one or more photos to classify", self.open_files)
        self.open_folder_button = _button(
            "Open folder…", "Classify every photo in a folder and its subfolders", self.open_folder
        )
        self.paste_button = _button(
            "Paste", "Classify the picture, image files or a picture's web address on the clipboard",
            self.paste_from_clipboard,
        )
        self.export_button = _button(
            "Export…", "Save these results as a CSV spreadsheet or JSON", self.export_results
        )
        self.sort_button = _button(
            "Sort into folders…", "Copy or move these photos into a folder per class", self.sort_into_folders
        )
        self.sort_dialog: SortDialog | None = None
        self.note = ElidedLabel()
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.cancel_download_button = _button("Cancel", "Stop downloading these pictures (Esc)",
                                              self.in_memory.cancel_downloads)
        self.cancel_download_button.hide()
        actions = QHBoxLayout()
        for button in (self.open_button, self.open_folder_button, self.paste_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.note)
        actions.addWidget(self.cancel_download_button)
        actions.addWidget(self.sort_button)
        actions.addWidget(self.export_button)
        self.progress = SetProgressBar()
        self.progress.cancel_button.clicked.connect(self.cancel)
        self.progress.hide()
        self.banner = MessageBanner()
        self.drop_zone = DropZone()
        self.drop_zone.paths_dropped.connect(self.add_paths)
        self.drop_zone.picture_dropped.connect(lambda image: self.classify_picture(image, "Dropped picture"))
        self.drop_zone.urls_dropped.connect(self.in_memory.download)
        self.single_card = ResultCard()
        self.single_page = QWidget()
        single_layout = QVBoxLayout(self.single_page)
        single_layout.addStretch(1)
        single_layout.addWidget(self.single_card, 0, Qt.AlignmentFlag.AlignHCenter)
        single_layout.addStretch(2)
        self.batch = BatchResults(self.model)
        self.batch.row_actions.failed.connect(self.banner.show_message)
        self.single_looked = WhereItLooked(self.single_card, self.bridge, self.pasted)
        self.batch_looked = WhereItLooked(self.batch.card, self.bridge, self.pasted)
        self.invitation_page = invitation_page()
        self.pages = QStackedWidget()
        for page in (self.invitation_page, self.single_page, self.batch):
            self.pages.addWidget(page)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        zone = QVBoxLayout(self.drop_zone)
        zone.setContentsMargins(10, 10, 10, 6)
        zone.addWidget(self.pages, 1)
        zone.addWidget(self.caption)
        layout = QVBoxLayout(self)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.banner)
        layout.addWidget(self.drop_zone, 1)

    # ----- the interface the main window uses ------------------------------------------------------------

    def set_recent_folder(self, folder: str) -> None:
        self._recent_folder = folder

    def open_files(self) -> None:
        from engine.decode import IMAGE_EXTENSIONS  # deferred: it loads every Pillow plugin, ~50 ms of start-up

        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open photos", self._recent_folder, f"Images ({patterns});;All files (*)"
        )
        if paths:
            self.add_paths(paths)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", self._recent_folder)
        if folder:
            self.add_paths([folder])

    def paste_from_clipboard(self) -> None:
        clipboard = QApplication.clipboard()
        mime = clipboard.mimeData()
        # Files copied in a file manager come as URLs (sometimes with a preview image too): the file itself is better.
        paths = local_paths(mime) or (paths_in_text(mime.text()) if mime is not None and mime.hasText() else [])
        if paths:
            self.add_paths(paths)
            return
        image = clipboard.image()
        if not image.isNull():
            self.classify_picture(image)
        elif urls := web_urls(mime):  # "Copy image address" in a browser
            self.in_memory.download(urls)
        else:
            self.banner.show_message(
                "The clipboard holds no picture, no image files and no picture's web address.",
                "Copy an image (in a browser or image editor) or some photos (in a file manager), then Paste.",
            )

    def _show_download(self, progress: str) -> None:
        self.note.setText(progress)
        self.note.setToolTip("")  # not the last export's path
        self.cancel_download_button.setVisible(bool(progress))

    def classify_picture(self, image: QImage, kind: str = "Pasted image") -> None:
        """Classify a picture held in memory (pasted, or a frame from the Live tab), named after its kind."""
        self.in_memory.add_image(image, kind)

    def add_paths(self, paths: list[str]) -> None:
        """Classify image files and folders; videos and a model file among them go to the window (videos_dropped,
        model_dropped)."""
        videos, models = video_files(paths), model_paths(paths)
        if videos:
            self.videos_dropped.emit(videos)
        if models:
            self.model_dropped.emit(models[0])  # one model at a time: the first
        paths = [path for path in paths if path not in videos and path not in models]
        if not paths:
            return
        folder = paths[0] if os.path.isdir(paths[0]) else os.path.dirname(paths[0])
        if folder:
            self._recent_folder = folder
            self.folder_used.emit(folder)
        self._request(inputs=tuple(paths))

    @property
    def running(self) -> bool:
        """Whether a set is being classified (or waits in the engine's queue)."""
        return bool(self._pending)

    def cancel(self) -> None:
        """Cancel (Esc): the batch being classified, and the pictures being downloaded."""
        self.in_memory.cancel_downloads()
        if self._pending:
            self._cancelling = True
            self.bridge.cancel_classification()
            self._refresh()

    def export_results(self) -> None:
        self._flush()
        if self.model.result_count == 0:
            self.banner.show_message("There are no results to export yet.", "Classify some photos first.")
            return
        folder = self._recent_folder or str(Path.home())
        default = Path(folder) / f"classifications-{datetime.now():%Y-%m-%d-%H%M}.csv"
        path, chosen_filter = QFileDialog.getSaveFileName(self, "Export results", str(default), EXPORT_FILTERS)
        if path:
            self.save_results(with_export_suffix(path, chosen_filter))

    def sort_into_folders(self) -> None:
        """Open the Sort into folders dialog on this set's results (once it is classified: the dialog sorts what
        it was given)."""
        self._flush()
        if self.running:
            self.banner.show_message("Sorting into folders starts once the photos are classified.",
                                     "Wait for the batch to finish, or cancel it.")
            return
        if self.model.result_count == 0:
            self.banner.show_message("There are no photos to sort yet.", "Classify some photos first.")
            return
        if self.sort_dialog is not None:
            self.sort_dialog.deleteLater()  # the last one, closed: each set gets a dialog of its own
        self.sort_dialog = SortDialog(self.model.results, self.model.shown_results, self)
        self.sort_dialog.photos_moved.connect(self._follow_moved_photos)
        self.sort_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.sort_dialog.open()

    @Slot(dict)
    def _follow_moved_photos(self, moved: dict[str, str]) -> None:
        """Moved photos' rows point at their new place, so Open and Show in folder still find them."""
        self.model.relocate(moved)
        self.batch.show_selected()
        if self.model.result_count == 1:
            self.single_card.show_result(self.model.results[0])

    def save_results(self, path: str) -> None:
        """Write the results so far to `path` (.csv or .json) on the export thread: 100,000 rows take seconds.
        `export_finished` says how it went; the note beside Export or the banner tells the user."""
        self._flush()
        results = self.model.results  # a copy of immutable results: the table may grow meanwhile
        more = " so far" if self._pending else ""
        self.note.setText(f"Saving {len(results):,} results…")
        self._exporting = results_exporter().submit(export_in_background, results, path, more)

    def _export_done(self, exporting: Future) -> None:
        if exporting is not self._exporting:
            return  # another window's export: every view hears the one exporter
        self._exporting = None
        note, tooltip, error = exporting.result()
        self.note.setText(note)
        self.note.setToolTip(tooltip)
        if error is not None:
            self.banner.show_message(error.message, error.hint)
        self.export_finished.emit(error is None)

    # ----- requests and the worker's answers -------------------------------------------------------------

    def _request(self, inputs: tuple[str, ...] = (), pasted: tuple[tuple[str, bytes], ...] = ()) -> None:
        # A drop while a set runs joins it: the worker runs requests in order, the table keeps growing and the
        # progress total grows, so nothing the user is watching vanishes mid-run. A drop once all is done starts
        # a fresh set, because dropping new pictures means "show me these" (the caption says which will happen).
        if not self._pending:
            self._start_set()
        self._cancelling = False  # a drop after Cancel is new work the user wants, and may cancel in turn
        self._pending.append(self.bridge.request_classify(inputs, pasted, topk=TOPK, thumbnail_size=THUMBNAIL_SIZE))
        self._refresh()

    def _start_set(self) -> None:
        self._flush_timer.stop()
        self._buffer.clear()
        self.batch.filter_field.clear()  # a new set shows all its results
        self.model.clear()
        self.single_card.clear()
        self.banner.hide()
        self.note.clear()
        self._total = self._received = 0
        self._cancelling = self._cancelled = False
        self._started_at = time.monotonic()
        self.progress.show()

    @Slot(object)
    def _on_batch_started(self, event: BatchProgress) -> None:
        if event.request_id in self._pending:
            self._total += event.total
            self._refresh()

    @Slot(object)
    def _on_image_classified(self, event: ClassifiedImage) -> None:
        if event.request_id not in self._pending:
            return
        self._buffer.append(event.result)
        self._received += 1
        if self.model.result_count == 0:
            self._flush()  # the first answer shows at once; later ones gather into chunks
        elif not self._flush_timer.isActive():
            self._flush_timer.start()

    @Slot(object)
    def _on_batch_finished(self, event: BatchFinished) -> None:
        if event.request_id in self._pending:
            self._cancelled |= event.cancelled
            self._end_request(event.request_id)

    @Slot(object)
    def _on_batch_failed(self, event: Failure) -> None:
        if event.request_id not in self._pending:
            return
        if event.cancelled:
            self._cancelled = True
        else:
            self.banner.show_message(event.message, event.hint)
        self._end_request(event.request_id)

    def _end_request(self, request_id: int) -> None:
        self._flush()
        self._pending.remove(request_id)
        if not self._pending:
            self._cancelling = False
            self._seconds = time.monotonic() - self._started_at
            if self._received == 0 and not self._cancelled:
                self.progress.hide()  # "0 / 0 · Done" would say nothing; the banner says what happened
                if self.banner.isHidden():
                    self.banner.show_message(
                        "No images were found there.",
                        "Folders are searched with all their subfolders for JPEG, PNG, HEIC, WebP, BMP, GIF and TIFF "
                        "files.",
                    )
        self._refresh()
        if not self._pending:
            self.set_finished.emit()

    def _flush(self) -> None:
        self._flush_timer.stop()
        if self._buffer:
            if self.model.result_count == 0:
                self.single_card.show_result(self._buffer[0])
            self.model.append(self._buffer)
            self._buffer = []
            self.batch.select_first_if_none()
        self._refresh()

    def _refresh(self) -> None:
        rows = self.model.result_count
        running = self.running
        if rows > 1 or self._total > 1 or len(self._pending) > 1:
            self.pages.setCurrentWidget(self.batch)
        elif rows == 1:
            self.pages.setCurrentWidget(self.single_page)
        else:
            self.pages.setCurrentWidget(self.invitation_page)
        self.export_button.setEnabled(rows > 0)
        self.sort_button.setEnabled(rows > 0 and not running)
        self.batch.count_shown()
        self.caption.setVisible(self.pages.currentWidget() is not self.invitation_page)
        self.caption.setText(
            "Drop more photos or folders here to add them to this batch."
            if running
            else "Drop photos or folders here to classify a new set."
        )
        self.progress.show_progress(
            SetProgress(
                received=self._received,
                total=self._total,
                running=running,
                waiting=max(len(self._pending) - 1, 0),
                failed=self.model.error_count(),
                cancelling=self._cancelling,
                cancelled=self._cancelled,
                seconds=time.monotonic() - self._started_at if running else self._seconds,
            )
        )


def _button(text: str, tooltip: str, slot) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(slot)
    return button

