"""How the window tells the user what state things are in: the status bar's model line, a banner, the error notifier;
and how it asks before doing what cannot be undone."""
from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QStatusBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.engine_messages import LoadProgress, ModelInfo

log = logging.getLogger(__name__)
MB = 1_000_000  # download sizes in decimal megabytes, as browsers and the Hub show them
STATE_COLOURS = {"ready": "#2e7d32", "error": "#b3261e"}  # mid-tones: readable on light and dark palettes


def load_state_text(progress: LoadProgress) -> str:
    """The status bar's state while a model loads, e.g. "downloading 43 % (12.1 of 28.0 MB)"."""
    if progress.unit == "bytes":
        if progress.total > 0:
            percent = int(100 * progress.done / progress.total)
            return f"downloading {percent} % ({progress.done / MB:.1f} of {progress.total / MB:.1f} MB)"
        return f"downloading {progress.done / MB:.1f} MB"
    if progress.unit == "steps" and (progress.total == 0 or progress.done < progress.total):
        return f"{progress.text[:1].lower()}{progress.text[1:]}…"  # a step of unknown length, e.g. an export
    return "loading…"


class ModelStatus(QWidget):
    """Always shows which model is in use, on which device and precision, what runs it, and what it is doing."""

    def __init__(self, status_bar: QStatusBar) -> None:
        super().__init__(status_bar)
        # A long model name or error message shortens with "…" (whole in the tooltip) rather than being cut off.
        self.model_label = ElidedLabel(keep_chars=24)  # the model in use is what the line is for
        self.device_label = QLabel()
        self.state_label = ElidedLabel()
        self.model_label.setObjectName("statusModel")
        font = self.model_label.font()
        font.setBold(True)
        self.model_label.setFont(font)
        self._device_separator = _separator()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(10)
        for widget in (self.model_label, self._device_separator, self.device_label, _separator(), self.state_label):
            layout.addWidget(widget)
        self.device_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addStretch(1)
        status_bar.addPermanentWidget(self, 1)
        self.show_no_model()

    def show_no_model(self) -> None:
        self.model_label.setText("No model")
        self.model_label.setToolTip("")
        self._set_device("")
        self._set_state("no model loaded", "")

    def show_loading(self, name: str, device: str, after_batch: bool = False) -> None:
        """`after_batch`: the engine finishes classifying the batch that is running first (with the model before)."""
        self.model_label.setText(name)
        self.model_label.setToolTip("")
        self._set_device(device)
        if after_batch:
            self._set_state("loads when the batch is done (Esc cancels the batch)",
                            "The batch that is running goes on with the model it started with")
        else:
            self._set_state("loading…", "")

    def show_device(self, device: str) -> None:
        """The device of the model loading, once the engine says what it is (e.g. what "auto" is)."""
        self._set_device(device)

    def show_progress(self, progress: LoadProgress) -> None:
        self._set_state(load_state_text(progress), progress.text)

    def show_ready(self, info: ModelInfo) -> None:
        self.model_label.setText(info.name)
        self.model_label.setToolTip(info.source)
        self._set_device(f"{info.device} · {info.backend}")
        self.device_label.setToolTip(info.backend_note)
        self._set_state("ready", "")

    def show_error(self, message: str) -> None:
        self._set_state(f"error: {message}", message)

    def show_cancelled(self) -> None:
        self._set_state("cancelled", "")

    @property
    def text(self) -> str:
        """The whole line as the user reads it."""
        labels = (self.model_label, self.device_label, self.state_label)
        return "  ".join(label.text() for label in labels if label.text())

    def _set_device(self, text: str) -> None:
        self.device_label.setText(text)
        self.device_label.setToolTip("")
        self.device_label.setVisible(bool(text))
        self._device_separator.setVisible(bool(text))

    def _set_state(self, text: str, detail: str) -> None:
        self.state_label.setText(text)
        self.state_label.setToolTip(detail)
        colour = STATE_COLOURS.get(text.split(":", 1)[0], "")
        self.state_label.setStyleSheet(f"color: {colour};" if colour else "")


class ElidedLabel(QLabel):
    """A one-line label for text of any length (a file name, a folder): when space is short it ends in "…" rather
    than widening the window past the screen; the whole text is then its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None, keep_chars: int = 1) -> None:
        super().__init__(text, parent)
        self._own_tooltip = ""
        self._keep_chars = keep_chars  # at least this many characters stay in view (when the text has them)

    def setToolTip(self, tooltip: str) -> None:
        self._own_tooltip = tooltip
        super().setToolTip(tooltip)

    def minimumSizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        kept = min(metrics.horizontalAdvance(self.text()), metrics.averageCharWidth() * self._keep_chars)
        return QSize(max(kept, metrics.horizontalAdvance("…") * 3), super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, rect.width())
        super().setToolTip(self._own_tooltip or (self.text() if shown != self.text() else ""))
        self.style().drawItemText(
            QPainter(self), rect, self.alignment(), self.palette(), self.isEnabled(), shown, self.foregroundRole()
        )


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class MessageBanner(QFrame):
    """A non-modal notice above the work area: message, hint, an optional action and a close button."""

    action_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        # Explicit colours on both background and text, so it stays readable under light and dark palettes.
        self.setStyleSheet(
            "#messageBanner { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 6px; }"
            "#messageBanner QLabel { color: #611a15; background: transparent; }"
        )
        self.message_label = QLabel()
        self.hint_label = QLabel()
        font = self.message_label.font()
        font.setBold(True)
        self.message_label.setFont(font)
        for label in (self.message_label, self.hint_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.clicked.connect(self.action_clicked)
        close_button = QToolButton()
        close_button.setText("✕")
        close_button.setToolTip("Dismiss")
        close_button.setAutoRaise(True)
        close_button.clicked.connect(self.hide)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.message_label)
        texts.addWidget(self.hint_label)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addLayout(texts, 1)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, message: str, hint: str = "", action: str = "") -> None:
        self.message_label.setText(message)
        self.hint_label.setText(hint)
        self.hint_label.setVisible(bool(hint))
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action))
        self.show()


class ErrorNotifier(QObject):
    """Catches what reaches sys.excepthook and threading.excepthook: logs the traceback, tells the GUI thread.

    `error_reported` is emitted from whichever thread failed; Qt queues it onto the GUI thread.
    """

    error_reported = Signal(str)  # one line describing the error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._previous_hooks: tuple | None = None

    def install(self) -> None:
        self._previous_hooks = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._on_exception
        threading.excepthook = self._on_thread_exception

    def uninstall(self) -> None:
        if self._previous_hooks is not None:
            sys.excepthook, threading.excepthook = self._previous_hooks
            self._previous_hooks = None

    def _on_exception(
        self, kind: type[BaseException], error: BaseException, traceback: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):  # Ctrl+C in the terminal still quits
            sys.__excepthook__(kind, error, traceback)
            return
        log.error("Unexpected error in Classifier Studio", exc_info=(kind, error, traceback))
        self.error_reported.emit(f"{kind.__name__}: {error}")

    def _on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread.name if args.thread else "a background thread"
        log.error("Unexpected error in %s", thread, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        self.error_reported.emit(f"{args.exc_type.__name__} in {thread}: {args.exc_value}")


def confirm(parent: QWidget, title: str, question: str) -> bool:
    """Ask a yes/no question whose safe answer, No, is the default; True for Yes."""
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
