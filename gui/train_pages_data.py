"""The wizard's first page: choose (or drop) a folder of class folders, see what the scan found, or resume a run."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.training.dataset import DatasetScan
from engine.training.run import Run
from gui.engine_messages import Failure
from gui.status import confirm
from gui.train_pages import (
    PROBLEM_BADGES,
    WizardPage,
    WizardState,
    bold_label,
    error_label,
    problem_icon,
    show_error,
    square_pixmap,
    strip_pixmap,
)
from gui.train_worker import RunsListed, ScanFinished, ScanProgress, ThumbnailsDecoded

THUMB = 44  # sample tiles in the class table
LAYOUTS = {"folders": "one folder per class", "split": "train / validation folders you made"}
RUN_ROLE = Qt.ItemDataRole.UserRole + 1


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def run_description(run: Run) -> str:
    """One line for the resume list, e.g. "shapes · cancelled after 3 of 10 epochs · 12 Mar 14:05"."""
    try:
        when = f"{dt.datetime.fromisoformat(run.created):%d %b %H:%M}"
    except ValueError:
        when = run.created
    state = {"new": "not started", "failed": "stopped by an error"}.get(run.status, run.status)
    epochs = f" after {run.epochs_done} of {run.plan.effective_epochs} epochs" if run.epochs_done else ""
    return f"{run.name} · {run.plan.arch} ({run.plan.method}) · {state}{epochs} · {when}"


class DataPage(WizardPage):
    title = "Your images"
    subtitle = ("Choose a folder with one subfolder of images per class (e.g. photos/cats, photos/dogs), or "
                "train/ and val/ folders of such subfolders. You can also drop the folder here.")

    scan_shown = Signal(object)  # DatasetScan, or the Failure shown instead; emitted once the page shows it
    resume_requested = Signal(str)  # a run folder

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.setAcceptDrops(True)
        self._scan_id: int | None = None
        self._thumbs_id: int | None = None
        self._tiles: dict[str, object] = {}  # sample path -> tile pixmap
        self.folder_field = QLineEdit()
        self.folder_field.setPlaceholderText("Folder of class folders")
        self.folder_field.setClearButtonEnabled(True)
        self.folder_field.returnPressed.connect(lambda: self.set_folder(self.folder_field.text()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        self.progress = QProgressBar()
        self.progress.setFormat("Scanning images… %v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.error = error_label()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.class_table = self._make_class_table()
        self.problems = QListWidget()
        self.problems.setWordWrap(True)
        self.problems.setSpacing(3)
        self.problems.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.problems.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.problems_title = bold_label("Problems")
        self.class_weights = QCheckBox("Use class weights (the loss counts images of small classes more)")
        self.class_weights.toggled.connect(self._class_weights_toggled)
        self.runs = QListWidget()
        self.runs.itemSelectionChanged.connect(self._run_selected)
        self.runs.itemDoubleClicked.connect(lambda _item: self.resume_selected())
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Carry on from the run's last finished epoch, with its own data and settings")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume_selected)
        self.delete_run_button = QPushButton("Delete…")
        self.delete_run_button.setToolTip("Delete the run and its saved epochs, to free disk space")
        self.delete_run_button.setEnabled(False)
        self.delete_run_button.clicked.connect(self.delete_selected)
        self._lay_out(browse)
        self._show_scanning(False)
        self._show_results(None)
        worker = state.bridge.worker
        worker.scan_progressed.connect(self._on_progress)
        worker.scan_finished.connect(self._on_scan_finished)
        worker.scan_failed.connect(self._on_scan_failed)
        worker.thumbnails_decoded.connect(self._on_thumbnails)
        worker.runs_listed.connect(self._on_runs_listed)

    def _make_class_table(self) -> QTableWidget:
        table = QTableWidget(0, 3)
        table.setHorizontalHeaderLabels(("Class", "Images", "Samples"))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    def _lay_out(self, browse: QPushButton) -> None:
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_field, 1)
        folder_row.addWidget(browse)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        problems_box = QWidget()
        problems_layout = QVBoxLayout(problems_box)
        problems_layout.setContentsMargins(0, 0, 0, 0)
        problems_layout.addWidget(self.problems_title)
        problems_layout.addWidget(self.problems, 1)
        problems_layout.addWidget(self.class_weights)
        classes_box = QWidget()
        classes_layout = QVBoxLayout(classes_box)
        classes_layout.setContentsMargins(0, 0, 0, 0)
        classes_layout.addWidget(bold_label("Classes"))
        classes_layout.addWidget(self.class_table, 1)
        self.results = QSplitter(Qt.Orientation.Horizontal)
        self.results.addWidget(classes_box)
        self.results.addWidget(problems_box)
        self.results.setStretchFactor(0, 3)
        self.results.setStretchFactor(1, 2)
        self.results.setChildrenCollapsible(False)
        self.drop_hint = QLabel("Drop a folder of class folders here, or press Browse…")
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setWordWrap(True)
        self.drop_hint.setStyleSheet("#dropHint { border: 2px dashed palette(mid); border-radius: 8px; "
                                     "color: palette(placeholder-text); padding: 24px; }")
        self.runs_box = QGroupBox("Resume a previous run")
        runs_layout = QHBoxLayout(self.runs_box)
        runs_layout.addWidget(self.runs, 1)
        run_buttons = QVBoxLayout()
        run_buttons.addWidget(self.resume_button)
        run_buttons.addWidget(self.delete_run_button)
        run_buttons.addStretch(1)
        runs_layout.addLayout(run_buttons)
        self.runs.setMaximumHeight(self.runs.fontMetrics().height() * 5)
        self.runs_box.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(folder_row)
        layout.addLayout(progress_row)
        layout.addWidget(self.error)
        layout.addWidget(self.summary)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.drop_hint, 1)
        layout.addWidget(self.runs_box)

    # The folder

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the folder of class folders", self.folder_field.text())
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str) -> None:
        """Scan `folder` in the training thread; the page shows the outcome (scan_shown says when)."""
        folder = folder.strip()
        self.folder_field.setText(folder)
        self.state.scan = None
        self._show_results(None)
        show_error(self.error, "")
        if not folder:
            self.complete_changed.emit()
            return
        self._scan_id = self.state.bridge.request_scan(folder)
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self._show_scanning(True)
        self.complete_changed.emit()

    def cancel_scan(self) -> None:
        self.state.bridge.cancel_scan()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_folder(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = _dropped_folder(event)
        if folder is not None:
            event.acceptProposedAction()
            self.set_folder(folder)

    @Slot(object)
    def _on_progress(self, progress: ScanProgress) -> None:
        if progress.request_id == self._scan_id:
            self.progress.setRange(0, max(progress.total, 1))
            self.progress.setValue(progress.done)

    @Slot(object)
    def _on_scan_finished(self, finished: ScanFinished) -> None:
        if finished.request_id != self._scan_id:
            return  # superseded by a newer folder
        self._scan_id = None
        self._show_scanning(False)
        scan = finished.scan
        self.state.scan = scan
        self._show_results(scan)
        samples = tuple(path for summary in scan.summaries for path in summary.samples)
        self._tiles.clear()
        self._thumbs_id = self.state.bridge.request_thumbnails(samples, THUMB * 2, "data page")
        self.complete_changed.emit()
        self.scan_shown.emit(scan)

    @Slot(object)
    def _on_scan_failed(self, failure: Failure) -> None:
        if failure.request_id != self._scan_id:
            return
        self._scan_id = None
        self._show_scanning(False)
        if failure.cancelled:
            show_error(self.error, "Scanning cancelled.", "Choose the folder again to scan it.")
        else:
            show_error(self.error, failure.message, failure.hint)
        self.complete_changed.emit()
        self.scan_shown.emit(failure)

    @Slot(object)
    def _on_thumbnails(self, decoded: ThumbnailsDecoded) -> None:
        if decoded.request_id != self._thumbs_id or self.state.scan is None:
            return
        for thumbnail in decoded.thumbnails:
            self._tiles[thumbnail.path] = square_pixmap(thumbnail.pixels, THUMB)
        arrived = {thumbnail.path for thumbnail in decoded.thumbnails}
        for row, summary in enumerate(self.state.scan.summaries):
            if arrived.isdisjoint(summary.samples):
                continue  # only the strips this chunk adds to are drawn again: classes × chunks would add up
            tiles = [self._tiles[path] for path in summary.samples if path in self._tiles]
            label = self.class_table.cellWidget(row, 2)
            if tiles and isinstance(label, QLabel):
                label.setPixmap(strip_pixmap(tiles, THUMB))

    def sample_tiles_shown(self) -> int:
        """How many classes show their strip of sample thumbnails so far."""
        labels = (self.class_table.cellWidget(row, 2) for row in range(self.class_table.rowCount()))
        return sum(1 for label in labels if isinstance(label, QLabel) and not label.pixmap().isNull())

    # What the scan found

    def _show_scanning(self, scanning: bool) -> None:
        self.progress.setVisible(scanning)
        self.cancel_button.setVisible(scanning)

    def _show_results(self, scan: DatasetScan | None) -> None:
        self.results.setVisible(scan is not None)
        self.summary.setVisible(scan is not None)
        self.drop_hint.setVisible(scan is None)
        self.class_table.setRowCount(0)
        self.problems.clear()
        if scan is None:
            self.class_weights.hide()
            return
        left_out = f" · {scan.skipped:,} file{'s' if scan.skipped != 1 else ''} left out" if scan.skipped else ""
        sizes = (f"{size_text(scan.min_size)} to {size_text(scan.max_size)} (median {size_text(scan.median_size)})"
                 if scan.min_size != scan.max_size else size_text(scan.min_size))
        self.summary.setText(
            f"<b>{len(scan.classes):,} classes · {scan.num_images:,} images</b>{left_out} · "
            f"{LAYOUTS.get(scan.layout, scan.layout)} · image sizes {sizes}"
        )
        self.class_table.setRowCount(len(scan.summaries))
        for row, summary in enumerate(scan.summaries):
            self.class_table.setItem(row, 0, QTableWidgetItem(summary.name))
            count = QTableWidgetItem(str(summary.images))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_table.setItem(row, 1, count)
            strip = QLabel()
            strip.setContentsMargins(4, 0, 4, 0)
            self.class_table.setCellWidget(row, 2, strip)
        for problem in scan.problems:
            item = QListWidgetItem(problem_icon(problem.kind), problem.message)
            words = PROBLEM_BADGES.get(problem.kind, ("", "", problem.kind))[2]
            item.setToolTip(f"{words}: {problem.path}" if problem.path else words)
            item.setData(Qt.ItemDataRole.UserRole, problem.kind)
            self.problems.addItem(item)
        if not scan.problems:
            ok = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)
            self.problems.addItem(QListWidgetItem(ok, "No problems found: every file can be used."))
        self.problems_title.setText(f"Problems ({len(scan.problems)})" if scan.problems else "Problems")
        self.class_weights.setVisible(scan.is_imbalanced)
        self.class_weights.setChecked(scan.is_imbalanced)  # preset on: lopsided folders train better with it
        self.state.class_weights = scan.is_imbalanced

    def problem_kinds(self) -> list[str]:
        return [self.problems.item(row).data(Qt.ItemDataRole.UserRole) for row in range(self.problems.count())]

    def _class_weights_toggled(self, checked: bool) -> None:
        self.state.class_weights = checked

    # Resuming

    def enter(self) -> None:
        self.state.bridge.request_runs()

    @Slot(object)
    def _on_runs_listed(self, listed: RunsListed) -> None:
        self.runs.clear()
        for run in listed.runs:
            item = QListWidgetItem(run_description(run))
            item.setData(RUN_ROLE, str(run.folder))
            item.setToolTip(str(run.folder))
            self.runs.addItem(item)
        self.runs_box.setVisible(bool(listed.runs))
        self._run_selected()
        if listed.error:
            show_error(self.error, listed.error)

    def _run_selected(self) -> None:
        chosen = bool(self.runs.selectedItems())
        self.resume_button.setEnabled(chosen)
        self.delete_run_button.setEnabled(chosen)

    def resume_selected(self) -> None:
        items = self.runs.selectedItems()
        if items:
            self.resume_requested.emit(items[0].data(RUN_ROLE))

    def delete_selected(self) -> None:
        items = self.runs.selectedItems()
        if not items:
            return
        question = f"Delete the unfinished run “{items[0].text()}”? Its finished epochs are lost."
        if confirm(self, "Delete run", question):
            self.state.bridge.request_delete_run(items[0].data(RUN_ROLE))

    def is_complete(self) -> bool:
        return self.state.scan is not None and self._scan_id is None


def _dropped_folder(event: QDragEnterEvent | QDropEvent) -> str | None:
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    folders = [url.toLocalFile() for url in urls if url.isLocalFile() and Path(url.toLocalFile()).is_dir()]
    return folders[0] if folders else None
