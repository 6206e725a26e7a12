"""Help > Show log opens the log file the app writes in the user's log folder; Help > About names the version
and where models and the log are kept."""
from __future__ import annotations

import contextlib
import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.paths import user_data_dir, user_log_dir
from gui.app import APP_LOGGERS, LOG_FILE_NAME, LOG_HANDLER_NAME, _log_to_file
from tests.gui.test_main_window import menu_actions


@pytest.fixture
def log_file_handler():
    """A log file in the user's log folder, as gui.app sets one up at start-up."""
    folder = user_log_dir()
    folder.mkdir(parents=True)
    handler = RotatingFileHandler(folder / LOG_FILE_NAME, encoding="utf-8")
    handler.set_name(LOG_HANDLER_NAME)
    logging.getLogger().addHandler(handler)
    logging.getLogger("gui").warning("a line for the log")
    yield Path(handler.baseFilename)
    logging.getLogger().removeHandler(handler)
    handler.close()


def test_the_log_lives_in_the_users_state_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert user_log_dir() == tmp_path / "state" / "Classifier Studio"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # invalid by the XDG spec: ignored
    assert user_log_dir() == Path.home() / ".local" / "state" / "Classifier Studio"


def test_show_log_opens_the_log_file(open_window, opened_urls, log_file_handler):
    window = open_window()
    menu_actions(window)["Show log"].trigger()
    assert [url.toLocalFile() for url in opened_urls] == [str(log_file_handler)]
    assert "a line for the log" in log_file_handler.read_text(encoding="utf-8")
    assert not window.banner.isVisible()


def test_show_log_without_a_log_file_says_where_messages_go(open_window, opened_urls):
    window = open_window()
    menu_actions(window)["Show log"].trigger()
    assert opened_urls == []
    assert window.banner.isVisible()
    assert "not writing a log file" in window.banner.message_label.text()


def test_about_names_the_version_and_where_models_and_the_log_are(open_window, qtbot, log_file_handler):
    window = open_window()
    seen = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.accept()
        else:
            QTimer.singleShot(20, read_and_close)

    QTimer.singleShot(0, read_and_close)
    menu_actions(window)["About Classifier Studio"].trigger()  # modal: returns once read_and_close closed it
    assert seen, "no About box appeared"
    assert "Classifier Studio" in seen[0] and str(user_data_dir()) in seen[0] and str(log_file_handler) in seen[0]


@contextlib.contextmanager
def bare_root_logger():
    """The root logger as a fresh app process finds it: no handlers (pytest's own are put back afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield root
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in APP_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_the_log_file_keeps_the_apps_progress_without_library_chatter(tmp_path):
    with bare_root_logger() as root:
        _log_to_file(tmp_path)
        logging.getLogger("engine.onnx_cache").info("Exported resnet50 for ONNX Runtime")
        logging.getLogger("onnxscript.optimizer").info("Skipping constant folding for node 'node_Shape_0'")
        logging.getLogger("onnxscript.optimizer").warning("a warning from a library is kept")
        for handler in root.handlers:
            handler.flush()
    text = (tmp_path / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "Exported resnet50" in text and "a warning from a library is kept" in text
    assert "constant folding" not in text
