"""Help > Show log opens the log file the app writes in the user's log folder; Help > About names the version
and where models and the log are kept."""
from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.paths import user_data_dir, user_log_dir
from gui.app import LOG_FILE_NAME, LOG_HANDLER_NAME
from tests.gui.test_main_window import menu_actions


class OpenedUrls(QObject):
    """Takes the place of the desktop's file opener, as Qt lets an application do for a URL scheme."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


@pytest.fixture
def opened_urls():
    opener = OpenedUrls()
    QDesktopServices.setUrlHandler("file", opener, "open")
    yield opener.urls
    QDesktopServices.unsetUrlHandler("file")


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
