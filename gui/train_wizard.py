"""The fine-tuning wizard: five pages (images, model, settings, training, results) a beginner walks with Next.

It owns the training thread (through TrainBridge): closing the wizard while a model trains asks first, then cancels
the run (which keeps its last finished epoch) and waits for the thread to end.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserFacingError
from gui.status import confirm
from gui.train_pages import WizardPage, WizardState, bold_label, note_label
from gui.train_pages_data import DataPage
from gui.train_pages_model import ModelPage
from gui.train_pages_results import ResultsPage
from gui.train_pages_run import TrainingPage
from gui.train_pages_settings import SettingsPage
from gui.train_worker import TrainBridge

DATA, MODEL, SETTINGS, TRAINING, RESULTS = range(5)
DEFAULT_SIZE = (1100, 780)
STOP_QUESTION = ("A model is still training. Stop it now?\n\nThe run keeps its last finished epoch: you can resume it "
                 "later from the wizard's first page.")


class TrainWizard(QDialog):
    """Non-modal: the main window stays usable while a model trains."""

    model_chosen = Signal(str)  # a finished bundle's path, when the user presses "Use this model"
    model_saved = Signal(str)  # a finished bundle's path, as soon as training has saved it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a model — Classifier Studio")
        self.setModal(False)
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self._shut_down = False
        self.bridge = TrainBridge(self)
        self.state = WizardState(self.bridge)
        self.data_page = DataPage(self.state)
        self.model_page = ModelPage(self.state)
        self.settings_page = SettingsPage(self.state)
        self.training_page = TrainingPage(self.state)
        self.results_page = ResultsPage(self.state)
        self.pages: list[WizardPage] = [
            self.data_page, self.model_page, self.settings_page, self.training_page, self.results_page
        ]
        # What leaving a page forwards does, beyond showing the next one.
        self._on_leave = {SETTINGS: self._start_training, TRAINING: self._show_results, RESULTS: self.accept}
        self.stack = QStackedWidget()
        for page in self.pages:
            self.stack.addWidget(page)
            page.complete_changed.connect(self._update_buttons)
        self.title_label = bold_label("", 1.4)
        self.subtitle_label = note_label()
        self.step_labels = [QLabel(f"{number}.  {page.title}") for number, page in enumerate(self.pages, 1)]
        self.back_button = QPushButton("‹ Back")
        self.back_button.clicked.connect(self.back)
        self.next_button = QPushButton()
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self.next)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        self._lay_out()
        self.data_page.resume_requested.connect(self.resume_run)
        self.data_page.scan_shown.connect(lambda _outcome: self._update_buttons())
        self.training_page.finished.connect(lambda _result: self._update_buttons())
        self.training_page.finished.connect(lambda result: self.model_saved.emit(str(result.bundle)))
        self.training_page.stopped.connect(lambda _stopped: self._update_buttons())
        self.training_page.started.connect(lambda _started: self._update_buttons())
        self.results_page.model_chosen.connect(self.model_chosen)
        QShortcut(QKeySequence("Alt+Right"), self, self.next)
        QShortcut(QKeySequence("Alt+Left"), self, self.back)
        screen = self.screen().availableGeometry()
        self.resize(min(DEFAULT_SIZE[0], int(screen.width() * 0.9)), min(DEFAULT_SIZE[1], int(screen.height() * 0.9)))
        self.go_to(DATA)

    def _lay_out(self) -> None:
        steps = QFrame()
        steps.setObjectName("wizardSteps")
        steps.setFrameShape(QFrame.Shape.StyledPanel)
        steps_layout = QVBoxLayout(steps)
        steps_layout.setContentsMargins(12, 16, 20, 16)
        steps_layout.setSpacing(10)
        for label in self.step_labels:
            steps_layout.addWidget(label)
        steps_layout.addStretch(1)
        header = QVBoxLayout()
        header.setSpacing(2)
        header.addWidget(self.title_label)
        header.addWidget(self.subtitle_label)
        content = QVBoxLayout()
        content.addLayout(header)
        content.addSpacing(6)
        content.addWidget(self.stack, 1)
        body = QHBoxLayout()
        body.addWidget(steps)
        body.addLayout(content, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addLayout(buttons)

    # Navigation

    @property
    def current_index(self) -> int:
        return self.stack.currentIndex()

    @property
    def current_page(self) -> WizardPage:
        return self.pages[self.current_index]

    def go_to(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        page = self.pages[index]
        self.title_label.setText(page.title)
        self.subtitle_label.setText(page.subtitle)
        for number, label in enumerate(self.step_labels):
            font = QFont(label.font())
            font.setBold(number == index)
            label.setFont(font)
            label.setEnabled(number <= index)
        page.enter()
        self._update_buttons()

    def next(self) -> None:
        if not self.next_button.isEnabled():
            return
        index, page = self.current_index, self.current_page
        if page.validate():
            return
        leave = self._on_leave.get(index)
        if leave is not None and leave() is False:
            return
        if index + 1 < len(self.pages):
            self.go_to(index + 1)

    def back(self) -> None:
        index = self.current_index
        if index > 0 and self.back_button.isEnabled():
            # From the results, Back shows the curves; from training it returns to the settings.
            self.go_to(index - 1)

    def _update_buttons(self) -> None:
        page, index = self.current_page, self.current_index
        self.back_button.setEnabled(index > 0 and page.can_go_back())
        self.next_button.setText(page.next_text)
        self.next_button.setEnabled(page.is_complete())

    def _start_training(self) -> bool:
        try:
            plan = self.settings_page.plan()
        except UserFacingError:
            return False  # validate() has shown it already
        self.training_page.start_new(plan, self.state.scan)
        return True

    def _show_results(self) -> bool:
        result = self.training_page.result
        if result is None:
            return False
        self.results_page.show_result(result)
        return True

    def resume_run(self, run_folder: str) -> None:
        """Jump to the training page and carry on the run in `run_folder` (from the Data page's list)."""
        if self.bridge.is_training:
            return
        self.go_to(TRAINING)
        self.training_page.resume(run_folder)
        self._update_buttons()

    # Closing

    def done(self, result: int) -> None:
        if self.bridge.is_training and not self._shut_down:
            if not confirm(self, "Stop training?", STOP_QUESTION):
                return
        self.shutdown()
        super().done(result)

    def shutdown(self) -> None:
        """Cancel whatever runs and wait for the training thread to end; without asking (the app is quitting)."""
        if not self._shut_down:
            self._shut_down = True
            self.bridge.shutdown()
