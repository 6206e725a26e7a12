"""The wizard's last page: how good the new model is (headline, per-class table, confusion matrix, mistakes) and
what to do with it: use it now, open or export its report, show its folder."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.training.metrics import Evaluation, Misclassified
from engine.training.run import unique_path
from engine.training.trainer import TrainResult
from gui.engine_messages import Failure
from gui.train_pages import WizardPage, WizardState, bold_label, error_label, note_label, show_error, square_pixmap
from gui.train_worker import ReportExported, ThumbnailsDecoded
from gui.training_charts import ConfusionMatrixView

GALLERY_THUMB = 96
MAX_GALLERY = 60  # the most confident mistakes; the report lists more
CLASS_COLUMNS = ("Class", "Precision", "Recall", "F1", "Images")


def mistake_caption(mistake: Misclassified) -> str:
    return f"true: {mistake.true_label} · taken for: {mistake.predicted_label} ({mistake.confidence * 100:.0f} %)"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


class ResultsPage(WizardPage):
    title = "Results"
    subtitle = "Measured on the validation images, which the model never learned from."
    next_text = "Done"

    model_chosen = Signal(str)  # the bundle's path: "Use this model"
    report_exported = Signal(str)  # the copy's folder, once the page says so

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: TrainResult | None = None
        self._thumbs_id: int | None = None
        self._export_id: int | None = None
        self._gallery_items: dict[str, list[QListWidgetItem]] = {}
        self.headline = bold_label("", 1.6)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Load it as the current model: classify and live recognition use it at once")
        self.use_button.clicked.connect(self.use_model)
        self.report_button = QPushButton("Open report")
        self.report_button.clicked.connect(self.open_report)
        self.export_button = QPushButton("Export report…")
        self.export_button.clicked.connect(self.export_report)
        self.folder_button = QPushButton("Show model folder")
        self.folder_button.clicked.connect(self.show_model_folder)
        self.status = note_label()
        self.status.hide()
        self.error = error_label()
        self.class_table = self._make_class_table()
        self.matrix = ConfusionMatrixView()
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(GALLERY_THUMB, GALLERY_THUMB))
        self.gallery.setGridSize(QSize(GALLERY_THUMB + 96, GALLERY_THUMB + self.fontMetrics().height() * 3 + 8))
        self.gallery.setWordWrap(True)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.gallery_title = bold_label("Mistakes")
        self.no_mistakes = note_label("Every validation image was classified correctly.")
        self.no_mistakes.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.no_mistakes.hide()
        self._lay_out()
        worker = state.bridge.worker
        worker.thumbnails_decoded.connect(self._on_thumbnails)
        worker.report_exported.connect(self._on_exported)
        worker.export_failed.connect(self._on_export_failed)

    def _make_class_table(self) -> QTableWidget:
        table = QTableWidget(0, len(CLASS_COLUMNS))
        table.setHorizontalHeaderLabels(CLASS_COLUMNS)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setSortingEnabled(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        return table

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.use_button, self.report_button, self.export_button, self.folder_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        matrix_scroll = QScrollArea()
        matrix_scroll.setWidget(self.matrix)
        matrix_scroll.setWidgetResizable(True)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(_titled("Per class", self.class_table))
        top.addWidget(_titled("Confusion matrix", matrix_scroll))
        top.setStretchFactor(0, 2)
        top.setStretchFactor(1, 3)
        top.setChildrenCollapsible(False)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(_titled(self.gallery_title, self.gallery, self.no_mistakes))
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(split, 1)

    def show_result(self, result: TrainResult) -> None:
        self.result = result
        evaluation = result.evaluation
        self.headline.setText(f"Accuracy {percent(evaluation.accuracy)}")
        parts = [f"top-5 {percent(evaluation.top5)}" if evaluation.top5 is not None else "",
                 f"loss {evaluation.loss:.3f}", f"macro F1 {evaluation.macro_f1:.3f}",
                 f"{evaluation.num_images:,} validation images, {evaluation.num_mistakes:,} mistaken"]
        if result.test_evaluation is not None:
            parts.append(f"test accuracy {percent(result.test_evaluation.accuracy)}")
        parts.append(f"best epoch {result.best_epoch} of {result.epochs_run}")
        self.details.setText(" · ".join(p for p in parts if p) + f"<br>Saved as <b>{result.bundle}</b>")
        self._set_status("")
        show_error(self.error, "")
        self._fill_class_table(evaluation)
        self.matrix.set_matrix(evaluation.labels, evaluation.confusion)
        self._fill_gallery(evaluation)

    def _fill_class_table(self, evaluation: Evaluation) -> None:
        self.class_table.setRowCount(len(evaluation.per_class))
        for row, metrics in enumerate(evaluation.per_class):
            cells = (metrics.name, f"{metrics.precision:.3f}", f"{metrics.recall:.3f}", f"{metrics.f1:.3f}",
                     str(metrics.support))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(row, column, item)

    def _fill_gallery(self, evaluation: Evaluation) -> None:
        self.gallery.clear()
        self._gallery_items.clear()
        shown = evaluation.misclassified[:MAX_GALLERY]
        total = evaluation.num_mistakes
        more = f", the {len(shown)} most confident shown" if total > len(shown) else ""
        self.gallery_title.setText(f"Mistakes ({total}{more})" if total else "Mistakes: none")
        self.gallery.setVisible(bool(shown))
        self.no_mistakes.setVisible(not shown)
        if not shown:
            return
        blank = QIcon(square_pixmap(None, GALLERY_THUMB))
        for mistake in shown:
            item = QListWidgetItem(blank, mistake_caption(mistake))
            item.setToolTip(mistake.path)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.gallery.addItem(item)
            self._gallery_items.setdefault(mistake.path, []).append(item)
        paths = tuple(m.path for m in shown if m.path)
        self._thumbs_id = self.state.bridge.request_thumbnails(paths, GALLERY_THUMB * 2, "mistakes")

    @Slot(object)
    def _on_thumbnails(self, decoded: ThumbnailsDecoded) -> None:
        if decoded.request_id != self._thumbs_id:
            return
        for thumbnail in decoded.thumbnails:
            icon = QIcon(square_pixmap(thumbnail.pixels, GALLERY_THUMB))
            for item in self._gallery_items.get(thumbnail.path, ()):
                item.setIcon(icon)

    # Actions

    def use_model(self) -> None:
        if self.result is not None:
            self._set_status(f"Loading {self.result.bundle.name} as the current model in the main window.")
            self.model_chosen.emit(str(self.result.bundle))

    def open_report(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result.report.html)))

    def show_model_folder(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result.bundle)))

    def export_report(self) -> None:
        if self.result is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the report into")
        if folder:
            target = unique_path(Path(folder), f"{self.result.bundle.name}-report")
            self._export_id = self.state.bridge.request_export(str(self.result.report.html.parent), str(target))
            self._set_status(f"Copying the report to {target}…")

    @Slot(object)
    def _on_exported(self, exported: ReportExported) -> None:
        if exported.request_id == self._export_id:
            self._set_status(f"Report copied to {exported.folder}")
            self.report_exported.emit(exported.folder)

    @Slot(object)
    def _on_export_failed(self, failure: Failure) -> None:
        if failure.request_id == self._export_id:
            self._set_status("")
            show_error(self.error, failure.message, failure.hint)

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))


def _titled(title: str | QLabel, *widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 4, 0, 0)
    layout.addWidget(title if isinstance(title, QLabel) else bold_label(title))
    for widget in widgets:
        layout.addWidget(widget, 1)
    return box
