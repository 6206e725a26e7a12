"""The window runs models on the fastest backend, says which in the status bar, and lets the user switch."""
from __future__ import annotations

from PySide6.QtCore import Qt

from engine.specs import Bundle, InferenceChoice, ModelSpec, builtin_model_spec
from gui.main_window import MainWindow
from gui.settings import AppSettings, load_settings, save_settings
from gui.status import load_state_text
from tests.conftest import make_bundle
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drop_files


def wait_ready(qtbot, window: MainWindow) -> None:
    state = window.model_status.state_label
    qtbot.waitUntil(lambda: state.text() == "ready" or state.text().startswith("error"), timeout=WAIT_MS)
    assert state.text() == "ready", state.text()


def states_shown(window: MainWindow) -> list[str]:
    """Every state the status bar shows while models load, in order."""
    shown = []
    window.bridge.worker.model_load_progressed.connect(lambda progress: shown.append(load_state_text(progress)))
    return shown


def test_first_use_on_the_cpu_prepares_fast_inference_once_then_the_status_bar_says_onnx_runtime(
    open_window, qtbot, tmp_path, photo_files
):
    bundle = make_bundle(tmp_path / "pets", seed=101)  # weights no other test uses: nothing cached yet
    window = open_window()
    shown = states_shown(window)
    window.load_model(ModelSpec(source=Bundle(str(bundle))), InferenceChoice("cpu"))
    wait_ready(qtbot, window)
    assert "preparing the model for fast inference, once…" in shown
    assert window.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime"
    drop_files(window.classify_view, qtbot, photo_files[:1])
    assert window.classify_view.single_card.bars.rows[0][0].text() in ("cat", "dog", "bird")

    shown.clear()
    window.load_model(ModelSpec(source=Bundle(str(bundle))), InferenceChoice("cpu"))
    wait_ready(qtbot, window)
    assert not any(state.startswith("preparing") for state in shown)  # the second load uses the kept file
    assert window.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime"


def test_choosing_pytorch_in_the_picker_reloads_the_model_with_it_and_is_remembered(open_window, qtbot, tiny_bundle):
    window = open_window(settings=AppSettings(device="cpu"))
    window.load_model(ModelSpec(source=Bundle(str(tiny_bundle))))
    wait_ready(qtbot, window)
    loaded = []
    window.bridge.worker.model_loaded.connect(loaded.append)

    box = window.picker.backend_box
    box.setFocus()
    while box.currentData() != "pytorch":  # the arrow keys pick the next item, as a user would
        qtbot.keyClick(box, Qt.Key.Key_Down)

    qtbot.waitUntil(lambda: bool(loaded), timeout=WAIT_MS)
    wait_ready(qtbot, window)
    assert loaded[-1].backend == "PyTorch" and loaded[-1].name == tiny_bundle.name
    assert window.model_status.device_label.text() == "CPU · fp32 · PyTorch"
    window.close()
    settings = load_settings()
    assert (settings.backend, settings.int8) == ("pytorch", False)
    reopened = open_window(settings=settings)
    assert reopened.picker.choice == InferenceChoice("cpu", "fp32", "pytorch", False)


def test_int8_calibrates_on_a_recent_folder_and_shows_how_closely_it_agrees(
    open_window, qtbot, photo_files
):
    """The built-in model (real ImageNet weights) in int8, calibrated on the photos the user classified lately."""
    settings = AppSettings(device="cpu", recent_folders=[str(photo_files[0].parent)])
    window = open_window(settings=settings)
    window.load_model(builtin_model_spec())
    wait_ready(qtbot, window)
    loaded = []
    window.bridge.worker.model_loaded.connect(loaded.append)

    qtbot.mouseClick(window.picker.int8_box, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: bool(loaded), timeout=WAIT_MS)
    wait_ready(qtbot, window)
    assert loaded[-1].backend == "ONNX Runtime int8"
    label = window.model_status.device_label
    assert label.text() == "CPU · fp32 · ONNX Runtime int8"
    assert "top-1 agrees with full precision on" in label.toolTip()
    cat = next(p for p in photo_files if p.stem == "chelsea")
    drop_files(window.classify_view, qtbot, [cat])
    assert "cat" in window.classify_view.single_card.bars.rows[0][0].text()
    window.close()  # saves the settings; the engine thread has remembered the int8 model
    assert load_settings().int8

    reopened = open_window(settings=load_settings())  # the next start: from the checked int8 file
    notes = []
    reopened.bridge.worker.model_load_progressed.connect(lambda progress: notes.append(progress.text))
    reopened.load_model(builtin_model_spec())  # with the int8 choice and the recent folders of the settings
    wait_ready(qtbot, reopened)
    assert any(note.startswith("Quick start") for note in notes), notes
    assert reopened.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime int8"
    assert reopened.model_status.device_label.toolTip() == label.toolTip()


def test_settings_keep_the_backend_and_int8_and_ignore_unknown_backends():
    save_settings(AppSettings(backend="onnxruntime", int8=True))
    assert (load_settings().backend, load_settings().int8) == ("onnxruntime", True)
    save_settings(AppSettings(backend="tensorrt-by-hand"))
    assert load_settings().backend == "auto"
