"""GUI test fixtures: settings kept in tmp_path, and main windows that always close and stop their engine thread."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QSettings, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from engine.models import Bundle, ModelSpec
from engine.paths import DATA_DIR_ENV
from engine.training.run import models_dir
from gui.engine_worker import EngineBridge
from gui.engine_messages import ModelInfo
from gui.main_window import MainWindow
from gui.model_picker import ModelPicker
from gui.settings import AppSettings, load_settings

WAIT_MS = 60_000  # generous: the test machines' cores are shared


def load_and_wait(bridge: EngineBridge, qtbot, bundle: Path) -> None:
    """Load a bundle through the engine thread and wait until it is the model in use."""
    # Polled rather than qtbot.waitSignal: pytest-qt's blocker would be woken on the engine thread.
    answers = []
    bridge.worker.model_loaded.connect(answers.append)
    bridge.worker.model_load_failed.connect(answers.append)
    bridge.request_load(ModelSpec(source=Bundle(str(bundle))))
    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    assert isinstance(answers[0], ModelInfo), f"{bundle.name} did not load: {answers[0]}"
    # `answers` filled on the engine thread; the window's slots, queued before it, hear of the model now.
    QApplication.processEvents()


@pytest.fixture(autouse=True)
def garbage_collected_on_the_gui_thread():
    """As gui.app does for users: no automatic collection, which could free a Qt object on the engine thread
    (and crash); the GUI thread collects before and after each test instead."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()
    gc.collect()


@pytest.fixture(autouse=True)
def settings_folder(tmp_path) -> Path:
    """Where QSettings writes during this test, so no test ever reads or changes the real user's settings."""
    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def open_window(qtbot):
    """Opens main windows on a real engine thread; each is closed at teardown (saving settings, joining the thread)."""
    windows: list[MainWindow] = []

    def open_window(autoload: bool = False, settings: AppSettings | None = None) -> MainWindow:
        window = MainWindow(EngineBridge(), settings or load_settings(), autoload=autoload)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield open_window
    for window in windows:
        window.close()  # idempotent: a window the test closed already is not saved twice


@pytest.fixture
def window_with_tiny_model(open_window, qtbot, tiny_bundle) -> MainWindow:
    """The real main window with a tiny self-made model loaded, ready to classify."""
    window = open_window()
    load_and_wait(window.bridge, qtbot, tiny_bundle)
    return window


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
    """Every file:// URL the app asks the desktop to open during the test, in order."""
    opener = OpenedUrls()
    QDesktopServices.setUrlHandler("file", opener, "open")
    yield opener.urls
    QDesktopServices.unsetUrlHandler("file")


@pytest.fixture
def picker(qtbot) -> ModelPicker:
    """The model picker on its own, as the window docks it."""
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.resize(520, 700)
    picker.show()
    qtbot.waitExposed(picker)
    return picker


@pytest.fixture
def models_folder(tmp_path, monkeypatch) -> Path:
    """The user's models folder ("My models"), inside this test's data folder."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    return models_dir()


def open_my_models(qtbot, picker: ModelPicker) -> None:
    """Choose the My models tab, which lists the folder again (off the GUI thread), and wait for the list."""
    with qtbot.waitSignal(picker.my_models_listed, timeout=WAIT_MS):
        picker.tabs.setCurrentWidget(picker.my_models_page)
