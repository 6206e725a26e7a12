"""The main window with a real engine thread and real models: loading, failures, superseding, settings, start-up."""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import timm
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QFileOpenEvent
from PySide6.QtWidgets import QApplication
from safetensors.torch import save as safetensors_bytes

from engine.builtin import BUILTIN_NAME
from engine.catalog import DEFAULT_ARCH, catalog
from engine.devices import available_devices, device_support
from engine.models import Bundle, ModelSpec, RandomInit, WeightsFile, ZeroShot
from engine.specs import InferenceChoice
from gui.application import StudioApplication
from gui.main_window import MainWindow, device_text
from gui.settings import (
    MAX_RECENT_FOLDERS,
    AppSettings,
    load_settings,
    save_settings,
    user_settings_store,
)
from gui.status import ErrorNotifier
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drop_files
from tests.hub_server import FakeHub, Throttle

REPO = Path(__file__).resolve().parents[2]


def load_and_wait(qtbot, window: MainWindow, spec: ModelSpec, choice: InferenceChoice = InferenceChoice("cpu")) -> None:
    """Ask the window to load `spec` and wait until its status bar says the outcome."""
    window.load_model(spec, choice)
    state = window.model_status.state_label
    qtbot.waitUntil(lambda: state.text() in ("ready", "cancelled") or state.text().startswith("error"), timeout=WAIT_MS)


def menu_actions(window: MainWindow) -> dict[str, QAction]:
    """Every menu item by its text as the user reads it (without the & of its keyboard accelerator)."""
    return {
        action.text().replace("&", ""): action
        for menu_action in window.menuBar().actions()
        for action in menu_action.menu().actions()
    }


def test_window_starts_with_the_catalog_menus_and_a_model_line(open_window):
    window = open_window()
    assert window.windowTitle() == "Classifier Studio"
    assert window.picker_dock.isVisible()
    assert window.picker.proxy.rowCount() == len(catalog())
    assert window.model_status.model_label.text() == "No model"
    assert window.model_status.state_label.text() == "no model loaded"
    shortcuts = {text: action.shortcut().toString() for text, action in menu_actions(window).items()}
    for text, keys in {
        "Open images…": "Ctrl+O",
        "Open folder…": "Ctrl+Shift+O",
        "Paste image": "Ctrl+V",
        "Export results…": "Ctrl+E",
        "Quit": "Ctrl+Q",
        "Choose model…": "Ctrl+M",
    }.items():
        assert shortcuts[text] == keys
    assert "Open model file…" in shortcuts and "Cancel loading" in shortcuts


def test_choose_model_toggles_the_picker(open_window):
    window = open_window()
    choose = menu_actions(window)["Choose model…"]
    choose.trigger()
    assert not window.picker_dock.isVisible()
    choose.trigger()
    assert window.picker_dock.isVisible()


def test_loading_a_bundle_through_the_picker_shows_it_in_the_status_bar(open_window, qtbot, tiny_bundle):
    window = open_window()
    window.picker.set_choice(InferenceChoice("cpu", "fp32"))
    with qtbot.waitSignal(window.bridge.worker.model_loaded, timeout=WAIT_MS):
        window.picker.load_bundle(str(tiny_bundle))
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    status = window.model_status
    assert status.model_label.text() == tiny_bundle.name
    assert status.device_label.text() == "CPU · fp32 · ONNX Runtime"
    assert tiny_bundle.name in window.windowTitle()
    assert not window.banner.isVisible()


def test_a_hub_download_shows_its_progress_then_the_model(open_window, qtbot, monkeypatch):
    """A catalog model picked and loaded from a (local, throttled) Hub: percent and megabytes, then ready."""
    arch = "mobilenetv3_small_100.lamb_in1k"
    torch.manual_seed(0)
    weights = safetensors_bytes(
        {k: v.contiguous() for k, v in timm.create_model(arch, pretrained=False).state_dict().items()}
    )
    with FakeHub() as hub:
        hub.add_file(f"timm/{arch}", "model.safetensors", weights)
        hub.throttle = Throttle(chunk_bytes=len(weights) // 20, delay_s=0.03)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        window = open_window()
        window.picker.select_arch(arch)
        window.picker.set_choice(InferenceChoice("cpu", "fp32"))
        qtbot.mouseClick(window.picker.load_button, Qt.MouseButton.LeftButton)
        state = window.model_status.state_label
        qtbot.waitUntil(lambda: state.text().startswith("downloading "), timeout=WAIT_MS)
        shown = re.fullmatch(r"downloading (\d+) % \((\d+\.\d) of (\d+\.\d) MB\)", state.text())
        assert shown, state.text()
        assert 0 <= int(shown[1]) <= 100 and float(shown[3]) == round(len(weights) / 1e6, 1)
        qtbot.waitUntil(lambda: state.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == arch
    assert window.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime"


def test_first_start_offline_is_ready_with_the_built_in_model_and_names_a_cat(
    open_window, qtbot, monkeypatch, photo_files
):
    """Network cable pulled, empty user folders: the built-in model loads at once and a dropped cat photo is a cat."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    window = open_window(autoload=True)
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == BUILTIN_NAME
    assert window.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime"
    assert not window.banner.isVisible()
    assert window.picker.chosen_arch() == DEFAULT_ARCH  # the picker shows what is loaded

    cat = next(p for p in photo_files if p.stem == "chelsea")
    drop_files(window.classify_view, qtbot, [cat])
    bars = window.classify_view.single_card.bars
    assert bars.visible_count() == 5
    assert bars.rows[0][0].text() in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}


def test_a_remembered_model_that_cannot_be_had_falls_back_to_the_built_in_one(open_window, qtbot):
    """Remembered ResNet-50 was never downloaded and the Hub is unreachable: say so once, use the built-in model."""
    settings = load_settings()
    settings.model_arch, settings.model_source = "resnet50.a1_in1k", "hub"
    window = open_window(autoload=True, settings=settings)
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == BUILTIN_NAME
    assert window.banner.isVisible()
    message = window.banner.message_label.text()
    assert "resnet50.a1_in1k could not be loaded" in message and "built-in model instead" in message
    assert window.banner.action_button.text() == "Open model file…"


def test_a_remembered_gpu_this_computer_lacks_falls_back_to_auto(open_window, qtbot, tiny_bundle):
    """The start-up load is sent before torch knows the devices; once the engine lists them, the picker falls back
    to auto and the model loads there, with no error for the user."""
    missing = next(device for device in ("cuda", "mps") if device not in available_devices())
    settings = AppSettings(model_source="bundle", model_path=str(tiny_bundle), device=missing, backend="pytorch")
    window = open_window(autoload=True, settings=settings)
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == tiny_bundle.name
    assert window.picker.device == "auto" and missing not in window.picker.choice_form.devices.devices
    assert window.model_status.device_label.text() == f"{device_support().description('auto', 'fp32')} · PyTorch"
    assert not window.banner.isVisible()


def test_the_loading_line_names_the_device_without_torch_until_the_engine_has_listed_them():
    assert device_text(InferenceChoice("auto", "fp32"), None) == "Auto · fp32"
    assert device_text(InferenceChoice("cuda", "fp16"), None) == "CUDA · fp16"
    devices = device_support()
    assert device_text(InferenceChoice("auto", "fp32"), devices) == devices.description("auto", "fp32")
    assert device_text(InferenceChoice("cpu", "bf16"), devices) == "CPU · bf16"


def test_choosing_a_hub_model_offline_says_so_and_offers_a_file(open_window, qtbot):
    window = open_window()
    window.picker.name_field.setText("resnet18")
    window.picker.load_chosen()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    assert window.model_status.model_label.text() == "No model"  # nothing loaded, nothing pretended
    assert window.model_status.state_label.text().startswith("error: ")
    assert "Hugging Face Hub" in window.banner.message_label.text()
    assert window.banner.hint_label.text()  # what to do about it
    assert window.banner.action_button.isVisible()
    assert window.banner.action_button.text() == "Open model file…"
    assert QApplication.activeModalWidget() is None  # nothing blocks the user


def test_a_garbage_weights_file_shows_the_error_banner(open_window, qtbot, tmp_path):
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(os.urandom(4096))
    window = open_window()
    window.picker.name_field.setText("resnet18")
    window.picker.load_model_file(str(garbage))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    assert "weights.pth" in window.banner.message_label.text()
    assert window.model_status.state_label.text().startswith("error: ")
    assert window.model_status.model_label.text() == "No model"  # nothing loaded, nothing pretended
    assert window.banner.action_button.text() == "Open model file…"


def test_the_window_keeps_responding_while_a_big_model_loads(open_window, qtbot):
    window = open_window()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    started = time.perf_counter()
    with qtbot.waitSignal(window.bridge.worker.model_loaded, timeout=WAIT_MS):
        window.load_model(ModelSpec("vit_base_patch16_224", RandomInit()), InferenceChoice("cpu", "fp32", "pytorch"))
    elapsed = time.perf_counter() - started
    timer.stop()
    # Building ~86 M parameters takes seconds; a frozen GUI thread would tick only once it is over.
    assert len(ticks) >= 10
    assert len(ticks) >= 0.25 * elapsed / 0.020
    assert max(b - a for a, b in itertools.pairwise(ticks)) < max(0.5, elapsed / 4)


def test_escape_cancels_the_running_batch(open_window, qtbot, tiny_bundle, photo_files, tmp_path):
    many = tmp_path / "many photos"
    many.mkdir()
    for number in range(400):  # links to real photos: a batch that takes a while, at no disk cost
        photo = photo_files[number % len(photo_files)]
        os.link(photo, many / f"{number}{photo.suffix}")
    window = open_window()
    load_and_wait(qtbot, window, ModelSpec(source=Bundle(str(tiny_bundle))))
    window.activateWindow()
    qtbot.waitActive(window)
    with qtbot.waitSignal(window.bridge.worker.batch_started, timeout=WAIT_MS):
        window.classify_view.add_paths([str(many)])
    with qtbot.waitSignal(window.bridge.worker.batch_finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert finished.args[0].cancelled


def test_a_model_chosen_during_a_batch_waits_for_it_and_says_so(open_window, qtbot, tiny_bundle, photo_files,
                                                                 tmp_path):
    many = tmp_path / "many photos"
    many.mkdir()
    for number in range(400):
        photo = photo_files[number % len(photo_files)]
        os.link(photo, many / f"{number}{photo.suffix}")
    window = open_window()
    load_and_wait(qtbot, window, ModelSpec(source=Bundle(str(tiny_bundle))))
    with qtbot.waitSignal(window.bridge.worker.batch_started, timeout=WAIT_MS):
        window.classify_view.add_paths([str(many)])
    window.load_model(ModelSpec("mobilenetv3_small_100", RandomInit()), InferenceChoice("cpu", "fp32", "pytorch"))
    assert window.model_status.model_label.text() == "mobilenetv3_small_100"
    assert window.model_status.state_label.text() == "loads when the batch is done (Esc cancels the batch)"

    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    # The whole batch ran with the model it started with: the bundle's classes, not ImageNet's.
    results = window.classify_view.model.results
    assert len(results) == 400 and {result.top[0].label for result in results} <= {"cat", "dog", "bird"}


def test_switching_model_mid_load_supersedes_the_first(open_window, qtbot, tiny_bundle):
    window = open_window()
    loaded, failed = [], []
    window.bridge.worker.model_loaded.connect(loaded.append)
    window.bridge.worker.model_load_failed.connect(failed.append)
    window.load_model(ModelSpec("resnet18", RandomInit()), InferenceChoice("cpu", "fp32"))
    first = window.bridge.current_load_id
    window.load_model(ModelSpec(source=Bundle(str(tiny_bundle))), InferenceChoice("cpu", "fp32"))
    qtbot.waitUntil(lambda: bool(loaded) and window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == tiny_bundle.name
    assert [info.name for info in loaded] == [tiny_bundle.name]
    assert all(f.cancelled for f in failed) and [f.request_id for f in failed] in ([], [first])
    assert not window.banner.isVisible()


def test_a_model_that_fails_while_the_first_still_loads_brings_the_first_back(open_window, qtbot, tiny_bundle,
                                                                            photo_files, tmp_path):
    """Nothing was in use yet when the second choice failed: the window loads the first again, never "No model"."""
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(os.urandom(4096))
    window = open_window()
    window.load_model(ModelSpec(source=Bundle(str(tiny_bundle))), InferenceChoice("cpu", "fp32"))
    window.load_model(ModelSpec("resnet18", WeightsFile(str(garbage))), InferenceChoice("cpu", "fp32"))
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.model_status.state_label.text() == "ready",
                    timeout=WAIT_MS)
    assert window.model_status.model_label.text() == tiny_bundle.name
    message = window.banner.message_label.text()
    assert message.startswith("resnet18 could not be loaded (") and "weights.pth" in message
    assert message.endswith(f"; loading {tiny_bundle.name} again.")
    drop_files(window.classify_view, qtbot, [photo_files[0]])  # and the engine classifies with it
    assert window.classify_view.single_card.bars.rows[0][0].text() in {"cat", "dog", "bird"}


def test_settings_survive_closing_and_reopening(open_window, qtbot, tiny_bundle, photo_files):
    window = open_window()
    load_and_wait(qtbot, window, ModelSpec(source=Bundle(str(tiny_bundle))))
    folder = str(photo_files[0].parent)
    window.classify_view.add_paths([folder])  # as the Open folder… dialog does
    window.toggle_picker()  # hide the picker
    qtbot.waitUntil(lambda: window.minimumWidth() < 700)  # the layout has let go of the picker's width
    window.resize(700, 500)  # within the offscreen screen, which restoreGeometry clamps to
    assert (window.width(), window.height()) == (700, 500)
    window.close()

    settings = load_settings()
    assert settings.recent_folders == [folder]
    assert settings.model_spec() == ModelSpec(source=Bundle(str(tiny_bundle)))
    assert (settings.device, settings.precision) == ("cpu", "fp32")

    reopened = open_window(autoload=True, settings=settings)
    assert (reopened.width(), reopened.height()) == (700, 500)
    assert not reopened.picker_dock.isVisible()
    assert reopened.recent_menu.actions()[0].text() == folder
    qtbot.waitUntil(lambda: reopened.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert reopened.model_status.model_label.text() == tiny_bundle.name


def test_recent_folders_keep_the_latest_few_without_repeats(tmp_path):
    settings = AppSettings()
    folders = [str(tmp_path / f"album {n}") for n in range(MAX_RECENT_FOLDERS + 3)]
    for folder in folders:
        settings.add_recent_folder(folder)
    settings.add_recent_folder(folders[-3])  # used again: moves to the top, once
    expected = [folders[-3], folders[-1], folders[-2], *reversed(folders[:-3])][:MAX_RECENT_FOLDERS]
    assert settings.recent_folders == expected
    save_settings(settings)
    assert load_settings().recent_folders == expected



def test_settings_written_by_hand_are_read_back(tmp_path):
    """The INI settings file stores a one-item list as a plain string and numbers as text: both read back typed."""
    path = Path(user_settings_store().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = str(tmp_path / "holiday")
    path.write_text(f"[General]\nschema_version=1\nrecent_folders={folder}\ntopk=3\ndevice=cpu\n", encoding="utf-8")
    settings = load_settings()
    assert (settings.recent_folders, settings.topk, settings.device) == ([folder], 3, "cpu")


def test_a_zero_shot_sentence_edited_by_hand_into_nonsense_falls_back_to_clips_own(tmp_path):
    path = Path(user_settings_store().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[General]\nschema_version=1\n[model]\nsource=zero-shot\narch=clip/ViT-B-32/openai\n"
        'classes=ant, bee\nprompt="no braces here"\n',
        encoding="utf-8",
    )
    assert load_settings().model_spec() == ModelSpec("clip/ViT-B-32/openai", ZeroShot(("ant", "bee")))


def test_corrupt_settings_fall_back_to_defaults(open_window):
    store = user_settings_store()
    store.setValue("schema_version", 1)
    for key, value in {
        "device": "quantum",
        "precision": 7,
        "topk": "lots",
        "recent_folders": 42,
        "window/geometry": "not bytes",
        "model/source": "ftp",
    }.items():
        store.setValue(key, value)
    store.sync()
    assert load_settings() == AppSettings()
    window = open_window(settings=load_settings())
    assert window.width() > 0 and window.picker.device == "auto"


def test_an_unreadable_settings_file_falls_back_to_defaults():
    path = Path(user_settings_store().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\xff[[[ not = an ini file\n" + os.urandom(256))
    assert load_settings() == AppSettings()


def test_errors_that_escape_show_a_banner_instead_of_crashing(open_window, qtbot):
    window = open_window()
    notifier = ErrorNotifier(window)
    notifier.error_reported.connect(window.report_internal_error)
    notifier.install()
    try:
        def fail() -> None:
            raise RuntimeError("a bug in a background thread")

        thread = threading.Thread(target=fail, name="helper")
        thread.start()
        thread.join()
        qtbot.waitUntil(window.banner.isVisible)
        assert "Something went wrong" in window.banner.message_label.text()
        assert "a bug in a background thread" in window.banner.hint_label.text()

        window.banner.hide()
        QTimer.singleShot(0, lambda: 1 / 0)  # a bug in a slot on the GUI thread reaches sys.excepthook
        qtbot.waitUntil(window.banner.isVisible)
        assert "ZeroDivisionError" in window.banner.hint_label.text()
        assert window.isVisible()
    finally:
        notifier.uninstall()


def test_without_a_display_the_app_points_to_the_command_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = (
        "import sys; from gui.app import run_gui; code = run_gui([]); "
        "assert 'PySide6.QtGui' not in sys.modules, 'Qt GUI was imported'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no display" in lines[0] and "python main.py classify PHOTO" in lines[0] and "--help" in lines[0]
    assert done.stdout == ""


def test_files_the_app_is_opened_with_are_classified_once_the_model_is_ready(open_window, qtbot, tiny_bundle,
                                                                                photo_files):
    """`ClassifierStudio a.jpg folder/` (a file manager's "Open with"): the window classifies them when it can."""
    window = open_window()
    window.open_paths([str(photo_files[0]), str(photo_files[0].parent)])
    qtbot.wait(200)
    assert window.classify_view.model.rowCount() == 0  # no model yet: they wait, rather than fail
    load_and_wait(qtbot, window, ModelSpec(source=Bundle(str(tiny_bundle))))
    table = window.classify_view.model
    qtbot.waitUntil(lambda: table.rowCount() == 1 + len(photo_files), timeout=WAIT_MS)
    assert all(result.error is None for result in table.results)
    window.open_paths([str(photo_files[1])])  # a model is ready now: at once
    qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=WAIT_MS)


def test_the_command_line_opens_the_window_for_existing_files_and_folders(tmp_path, photo_files, monkeypatch):
    from main import opens_files

    photo, folder = str(photo_files[0]), str(photo_files[0].parent)
    assert opens_files([photo]) and opens_files([photo, folder])
    assert not opens_files(["classify", photo])  # a subcommand
    assert not opens_files([photo, "--json"]) and not opens_files([str(tmp_path / "missing.jpg")])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").write_text("a file named like a subcommand")
    assert not opens_files(["models"])  # the subcommand wins


def test_files_macos_opens_with_the_app_reach_the_window(open_window, qtbot, tiny_bundle, photo_files):
    """Finder's "Open With" sends FileOpen events instead of arguments, possibly before the window exists."""
    app = QApplication.instance()
    assert isinstance(app, StudioApplication)
    QApplication.sendEvent(app, QFileOpenEvent(str(photo_files[0])))  # no window yet: it waits
    window = open_window()
    try:
        app.open_files_with(window.open_paths)
        load_and_wait(qtbot, window, ModelSpec(source=Bundle(str(tiny_bundle))))
        table = window.classify_view.model
        qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=WAIT_MS)
        assert table.results[0].path == str(photo_files[0])
        qtbot.waitUntil(lambda: not window.classify_view.progress.cancel_button.isVisible(), timeout=WAIT_MS)
        QApplication.sendEvent(app, QFileOpenEvent(str(photo_files[1])))
        qtbot.waitUntil(lambda: [r.path for r in table.results] == [str(photo_files[1])], timeout=WAIT_MS)
    finally:
        app.open_files_with(None)
