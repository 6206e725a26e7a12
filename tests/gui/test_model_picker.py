"""The model picker on its own: the real catalog in a real table, search, numeric sorting, names, files, devices;
and My models, the user's trained bundles, loading in the real engine."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from safetensors.torch import save_file

from engine.catalog import catalog
from engine.devices import available_devices, device_support, supported_precisions
from engine.models import Bundle, Hub, ModelSpec, WeightsFile, create_architecture
from engine.specs import DeviceSupport, InferenceChoice, builtin_model_spec
from gui.engine_messages import ModelInfo
from gui.inference_form import DEVICE_NAMES
from gui.catalog_table import ARCH_ROLE, NAME, PARAMS, TAGS
from gui.model_picker import ModelPicker
from gui.my_models_view import IN_USE_TIP, MY_ACCURACY, MY_CLASSES, MY_DATE, MY_MODELS_EMPTY, MY_NAME, MyModelsPage
from tests.conftest import TINY_ARCH, make_bundle
from tests.engine.test_my_models import save_my_model
from tests.gui.conftest import WAIT_MS, open_my_models
from tests.gui.test_classify_view import drag_and_drop, file_mime


@pytest.fixture
def plain_weights(tmp_path) -> Path:
    """A weights-only file (no bundle metadata) of the tiny test architecture."""
    model, _ = create_architecture(TINY_ARCH, pretrained=False)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def column_texts(picker: ModelPicker, column: int) -> list[str]:
    proxy = picker.proxy
    return [proxy.index(row, column).data() for row in range(proxy.rowCount())]


def click_header(qtbot, picker: ModelPicker, column: int) -> None:
    header = picker.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def select_row(picker: ModelPicker, row: int) -> str:
    picker.table.selectRow(row)
    return picker.proxy.index(row, 0).data(ARCH_ROLE)


def shown_name(entry) -> str:
    """The built-in model is marked in its name, where the eye lands."""
    return f"{entry.display_name} (built in · offline)" if entry.source == "builtin" else entry.display_name


def test_shows_the_whole_catalog_in_curated_order(picker):
    names = column_texts(picker, NAME)
    assert names == [shown_name(entry) for entry in catalog()]
    assert names[0] == "EfficientNet-Lite0 (built in · offline)"


def test_search_filters_on_name_family_and_tags(picker, qtbot):
    total = picker.proxy.rowCount()
    qtbot.keyClicks(picker.search_field, "resnet")
    names = column_texts(picker, NAME)
    assert 0 < len(names) < total
    assert all("resnet" in name.lower().replace("-", "") for name in names)

    picker.search_field.clear()
    qtbot.keyClicks(picker.search_field, "mobile/edge")
    tagged = [shown_name(entry) for entry in catalog() if "mobile/edge" in entry.tags]
    assert column_texts(picker, NAME) == tagged
    assert all("mobile/edge" in tags for tags in column_texts(picker, TAGS))

    picker.search_field.clear()
    assert picker.proxy.rowCount() == total


def test_params_column_sorts_by_number_not_by_text(picker, qtbot):
    click_header(qtbot, picker, PARAMS)
    shown = column_texts(picker, PARAMS)
    numbers = [float(text.removesuffix(" M")) for text in shown]
    assert numbers == sorted(numbers)
    assert shown != sorted(shown), "text order would differ from number order for this catalog"

    click_header(qtbot, picker, PARAMS)
    numbers = [float(text.removesuffix(" M")) for text in column_texts(picker, PARAMS)]
    assert numbers == sorted(numbers, reverse=True)


def test_an_unknown_typed_name_shows_an_inline_message_and_loads_nothing(picker, qtbot):
    qtbot.keyClicks(picker.name_field, "resnet5O")
    with qtbot.assertNotEmitted(picker.load_requested):
        qtbot.keyClick(picker.name_field, Qt.Key.Key_Return)
        # Names outside the catalog are checked off the GUI thread (only timm knows them all).
        qtbot.waitUntil(lambda: picker.message != "", timeout=WAIT_MS)
    assert "Unknown model 'resnet5O'" in picker.message
    assert "Did you mean" in picker.message

    qtbot.keyClicks(picker.name_field, "x")  # typing again clears the message
    assert picker.message == ""


def test_a_typed_timm_name_loads_from_the_hub(picker, qtbot):
    qtbot.keyClicks(picker.name_field, "resnet18.a1_in1k")
    with qtbot.waitSignal(picker.load_requested) as requested:
        qtbot.mouseClick(picker.load_button, Qt.MouseButton.LeftButton)
    assert requested.args == [ModelSpec("resnet18.a1_in1k", Hub()), picker.choice]


def test_double_clicking_a_row_loads_that_model(picker, qtbot):
    arch = select_row(picker, 3)
    assert picker.name_field.text() == arch
    rect = picker.table.visualRect(picker.proxy.index(3, NAME))
    with qtbot.waitSignal(picker.load_requested) as requested:
        # A real double-click is a press then a double-click event; the view only acts on the row it pressed.
        qtbot.mouseClick(picker.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(picker.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert requested.args[0] == ModelSpec(arch, Hub())


def device_list(picker: ModelPicker) -> list[str]:
    return [picker.device_box.itemData(i) for i in range(picker.device_box.count())]


def test_device_choice_limits_precisions(picker):
    picker.set_devices(device_support())  # as the engine reports them, once it has imported torch
    assert picker.device_box.itemData(0) == "auto"
    assert [picker.device_box.itemData(i) for i in range(1, picker.device_box.count())] == available_devices()
    picker.precision_box.setCurrentIndex(picker.precision_box.findData("fp32"))
    for device in available_devices():
        picker.device_box.setCurrentIndex(picker.device_box.findData(device))
        shown = [picker.precision_box.itemData(i) for i in range(picker.precision_box.count())]
        assert shown == supported_precisions(device)
        assert picker.precision == "fp32"  # kept: every device supports it


def test_before_the_engine_lists_the_devices_auto_cpu_and_a_remembered_gpu_are_offered(picker, qtbot):
    """The window shows before torch is imported, so before anyone knows the GPUs: a remembered GPU stays chosen
    (and its precision), and once the engine has looked, a GPU that is not there falls back to auto, once."""
    assert device_list(picker) == ["auto", "cpu"]
    assert picker.device_box.itemText(0) == "Auto"
    picker.set_choice(InferenceChoice("cuda", "fp16", "pytorch"))
    assert device_list(picker) == ["auto", "cpu", "cuda"]
    assert picker.choice == InferenceChoice("cuda", "fp16", "pytorch")

    found = device_support()
    changes = []
    picker.choice_changed.connect(changes.append)
    picker.set_devices(found)
    assert device_list(picker) == ["auto", *found.devices]
    assert picker.device_box.itemText(0) == f"Auto ({DEVICE_NAMES[found.auto]})"
    if "cuda" in found.devices:
        assert picker.device == "cuda" and not changes
    else:  # the window reloads the model on the device there is
        assert picker.device == "auto"
        assert picker.precision == ("fp16" if "fp16" in found.precisions[found.auto] else "fp32")
        assert changes == [picker.choice]


def test_a_remembered_gpu_stays_chosen_where_the_engine_finds_one(picker, qtbot):
    """On a CUDA machine (its report written out, as the engine's device_support gives it there) the remembered
    GPU stays chosen; a precision it lacks falls back to fp32, which the window reloads with."""
    picker.set_choice(InferenceChoice("cuda", "bf16"))
    cuda_machine = DeviceSupport(("cuda", "cpu"), "cuda", {"cuda": ("fp32", "fp16"), "cpu": ("fp32", "bf16")},
                                 {"cuda": "CUDA (NVIDIA H100)", "cpu": "CPU"})
    with qtbot.waitSignal(picker.choice_changed, timeout=WAIT_MS) as changed:  # this GPU has no bf16
        picker.set_devices(cuda_machine)
    assert changed.args == [InferenceChoice("cuda", "fp32")]
    assert device_list(picker) == ["auto", "cuda", "cpu"] and picker.device_box.itemText(0) == "Auto (CUDA GPU)"
    assert [picker.precision_box.itemData(i) for i in range(picker.precision_box.count())] == ["fp32", "fp16"]
    with qtbot.assertNotEmitted(picker.choice_changed):
        picker.set_devices(cuda_machine)  # nothing changes: nothing to reload


def test_a_plain_weights_file_needs_an_architecture(picker, plain_weights, qtbot):
    with qtbot.assertNotEmitted(picker.load_requested):
        picker.load_model_file(str(plain_weights))
    assert "select the architecture" in picker.message

    picker.name_field.setText(TINY_ARCH)
    with qtbot.waitSignal(picker.load_requested) as requested:
        picker.load_model_file(str(plain_weights))
    assert requested.args[0] == ModelSpec(TINY_ARCH, WeightsFile(str(plain_weights)))
    assert picker.message == ""


def test_a_bundle_file_or_folder_loads_as_a_bundle(picker, tmp_path, tiny_bundle, qtbot):
    bundle_file = make_bundle(tmp_path / "single.safetensors")
    with qtbot.waitSignal(picker.load_requested) as requested:
        picker.load_model_file(str(bundle_file))  # no architecture chosen: the bundle names its own
    assert requested.args[0] == ModelSpec(source=Bundle(str(bundle_file)))

    with qtbot.waitSignal(picker.load_requested) as requested:
        picker.load_bundle(str(tiny_bundle))
    assert requested.args[0] == ModelSpec(source=Bundle(str(tiny_bundle)))


def test_a_folder_that_is_no_bundle_is_refused_inline(picker, tmp_path, qtbot):
    folder = tmp_path / "holiday photos"
    folder.mkdir()
    with qtbot.assertNotEmitted(picker.load_requested):
        picker.load_bundle(str(folder))
    assert "holiday photos is not a Classifier Studio model bundle" in picker.message


# My models


def my_models_column(picker: ModelPicker | MyModelsPage, column: int) -> list[str]:
    page = picker if isinstance(picker, MyModelsPage) else picker.my_models_page
    return [page.proxy.index(row, column).data() for row in range(page.proxy.rowCount())]


def double_click_my_model(qtbot, picker: ModelPicker, row: int) -> None:
    table = picker.my_models_page.table
    rect = table.visualRect(picker.my_models_page.proxy.index(row, MY_NAME))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_my_models_lists_trained_models_newest_first_with_their_accuracy(models_folder, picker, qtbot):
    save_my_model(models_folder / "flowers", "Flowers", "2024-03-01T09:00:00", 0.81)
    save_my_model(models_folder / "birds.safetensors", "Garden birds", "2024-05-02T18:30:00", 0.95,
                  labels=("robin", "wren"), base_model="resnet18.a1_in1k")
    open_my_models(qtbot, picker)

    assert picker.tabs.tabText(1) == "My models (2)"
    assert my_models_column(picker, MY_NAME) == ["Garden birds", "Flowers"]
    assert my_models_column(picker, MY_CLASSES) == ["2", "3"]
    assert my_models_column(picker, MY_ACCURACY) == ["95 %", "81 %"]
    assert my_models_column(picker, MY_DATE) == ["2024-05-02 18:30", "2024-03-01 09:00"]
    tip = picker.my_models_page.proxy.index(0, MY_NAME).data(Qt.ItemDataRole.ToolTipRole)
    assert TINY_ARCH in tip and "robin, wren" in tip and "resnet18.a1_in1k" in tip
    assert picker.my_models_page.table.isVisible() and not picker.my_models_page.empty_label.isVisible()


def test_my_models_says_how_to_train_one_when_there_is_none(models_folder, picker, qtbot):
    open_my_models(qtbot, picker)
    assert picker.tabs.tabText(1) == "My models"
    assert picker.my_models_page.empty_label.isVisible() and not picker.my_models_page.table.isVisible()
    assert picker.my_models_page.empty_label.text() == MY_MODELS_EMPTY
    assert "Train a model" in MY_MODELS_EMPTY
    assert not picker.my_models_page.load_button.isEnabled()
    assert picker.my_models_page.folder_to_show() == models_folder
    # Show folder: the offscreen platform, like a desktop without a file manager, opens nothing; said inline.
    qtbot.mouseClick(picker.my_models_page.show_folder_button, Qt.MouseButton.LeftButton)
    assert picker.message.startswith(f"Could not open {models_folder}.")


def test_show_folder_opens_the_chosen_models_folder(models_folder, picker, qtbot, opened_urls):
    chosen = save_my_model(models_folder / "shapes", "Shapes", "2024-01-01T10:00:00")
    open_my_models(qtbot, picker)
    picker.my_models_page.table.selectRow(0)
    qtbot.mouseClick(picker.my_models_page.show_folder_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened_urls] == [str(chosen)]
    assert picker.message == ""


def test_refresh_picks_up_a_new_model_and_keeps_the_chosen_one(models_folder, picker, qtbot):
    first = save_my_model(models_folder / "first", "First", "2024-01-01T10:00:00")
    open_my_models(qtbot, picker)
    picker.my_models_page.table.selectRow(0)
    assert picker.my_models_page.chosen_model() == first

    save_my_model(models_folder / "second", "Second", "2024-06-01T10:00:00")  # training just finished
    with qtbot.waitSignal(picker.my_models_listed, timeout=WAIT_MS):
        picker.refresh_my_models()

    assert my_models_column(picker, MY_NAME) == ["Second", "First"]
    assert picker.my_models_page.chosen_model() == first
    assert picker.my_models_page.folder_to_show() == first  # its report is in there


def test_showing_the_picker_again_lists_the_folder_again(models_folder, picker, qtbot):
    open_my_models(qtbot, picker)
    assert my_models_column(picker, MY_NAME) == []
    picker.hide()
    save_my_model(models_folder / "shapes", "Shapes", "2024-01-01T10:00:00")
    with qtbot.waitSignal(picker.my_models_listed, timeout=WAIT_MS):
        picker.show()
    assert my_models_column(picker, MY_NAME) == ["Shapes"]


def test_load_button_loads_the_chosen_model_and_a_vanished_one_is_explained(models_folder, picker, qtbot):
    kept = save_my_model(models_folder / "kept.safetensors", "Kept", "2024-01-01T10:00:00")
    gone = save_my_model(models_folder / "gone", "Gone", "2024-02-01T10:00:00")
    open_my_models(qtbot, picker)
    picker.my_models_page.table.selectRow(1)
    with qtbot.waitSignal(picker.load_requested) as requested:
        qtbot.mouseClick(picker.my_models_page.load_button, Qt.MouseButton.LeftButton)
    assert requested.args == [ModelSpec(source=Bundle(str(kept))), picker.choice]

    picker.my_models_page.table.selectRow(0)
    for file in gone.iterdir():
        file.unlink()
    gone.rmdir()
    with qtbot.assertNotEmitted(picker.load_requested), qtbot.waitSignal(picker.my_models_listed, timeout=WAIT_MS):
        qtbot.mouseClick(picker.my_models_page.load_button, Qt.MouseButton.LeftButton)
    assert "gone is no longer in your models folder" in picker.message
    assert my_models_column(picker, MY_NAME) == ["Kept"]


def test_delete_moves_a_model_to_the_trash_but_never_the_one_in_use(models_folder, picker, qtbot, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the trash this test may fill (Linux)
    (tmp_path / "xdg").mkdir()
    in_use = save_my_model(models_folder / "in_use", "In use", "2024-02-01T10:00:00")
    unwanted = save_my_model(models_folder / "unwanted.safetensors", "Unwanted", "2024-01-01T10:00:00")
    picker.show_in_use(ModelSpec(source=Bundle(str(in_use))))
    open_my_models(qtbot, picker)
    page = picker.my_models_page
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)

    page.table.selectRow(0)  # "In use", the newest
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert "“In use” is in use" in picker.message and in_use.is_dir()

    page.table.selectRow(1)
    with qtbot.waitSignal(picker.my_models_listed, timeout=WAIT_MS):
        qtbot.keyClick(page.table, Qt.Key.Key_Delete)  # as the button does
    assert my_models_column(picker, MY_NAME) == ["In use"]
    assert not unwanted.exists() and picker.message == ""
    if sys.platform.startswith("linux"):  # where the trash is a folder this test chose
        assert (tmp_path / "xdg" / "Trash" / "files" / unwanted.name).is_file()


def test_refreshing_while_listing_says_listed_once_for_the_newest_look(models_folder, qtbot):
    page = MyModelsPage()
    qtbot.addWidget(page)
    listed_on = []
    page.listed.connect(lambda: listed_on.append(threading.current_thread()))
    page.refresh()  # its answer comes back through the event loop, which has not run yet
    save_my_model(models_folder / "late", "Late", "2024-01-01T10:00:00")  # after that listing looked, perhaps
    with qtbot.waitSignal(page.listed, timeout=WAIT_MS):
        page.refresh()
    assert my_models_column(page, MY_NAME) == ["Late"]
    assert listed_on == [threading.main_thread()]  # said once, for the newer look, and on the GUI thread


def test_a_page_closed_while_listing_leaves_the_next_page_working(models_folder, qtbot):
    save_my_model(models_folder / "shapes", "Shapes", "2024-01-01T10:00:00")
    closed = MyModelsPage()
    closed.refresh()
    shiboken6.delete(closed)  # as when the window closes: its listing is still on its way
    page = MyModelsPage()
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.listed, timeout=WAIT_MS):
        page.refresh()
    assert my_models_column(page, MY_NAME) == ["Shapes"]


def names_in_use(proxy, name_column: int) -> list[str]:
    """The rows a table marks as the model in use: a tick in the first column, and a tooltip saying so."""
    names = []
    for row in range(proxy.rowCount()):
        if proxy.index(row, 0).data(Qt.ItemDataRole.DecorationRole) is not None:
            assert proxy.index(row, name_column).data(Qt.ItemDataRole.ToolTipRole).startswith(IN_USE_TIP)
            names.append(proxy.index(row, name_column).data())
    return names


def test_double_clicking_my_model_loads_it_in_the_engine_and_marks_it_in_use(models_folder, open_window, qtbot):
    bundle = save_my_model(models_folder / "shapes", "Shapes", "2024-01-01T10:00:00", labels=("circle", "square"))
    window = open_window()
    picker = window.picker
    picker.set_choice(InferenceChoice("cpu", "fp32"))
    window.load_model(builtin_model_spec())
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    builtin = next(entry for entry in catalog() if entry.source == "builtin")
    assert names_in_use(picker.proxy, NAME) == [shown_name(builtin)]
    open_my_models(qtbot, picker)
    assert names_in_use(picker.my_models_page.proxy, MY_NAME) == []
    answers = []
    window.bridge.worker.model_loaded.connect(answers.append)
    window.bridge.worker.model_load_failed.connect(answers.append)

    double_click_my_model(qtbot, picker, 0)

    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    assert isinstance(answers[0], ModelInfo), answers[0]
    assert (answers[0].name, answers[0].num_classes) == ("Shapes", 2)
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.settings.model_spec() == ModelSpec(source=Bundle(str(bundle)))  # restored at next start
    assert names_in_use(picker.my_models_page.proxy, MY_NAME) == ["Shapes"]
    assert names_in_use(picker.proxy, NAME) == []


def test_a_bundle_or_a_weights_file_dropped_on_the_window_is_loaded_not_classified(
    open_window, qtbot, tiny_bundle, plain_weights
):
    window = open_window()
    window.picker_dock.hide()
    loaded = []
    window.bridge.worker.model_loaded.connect(loaded.append)

    def drop(path: Path) -> None:
        enter, dropped = drag_and_drop(window.classify_view.drop_zone, file_mime([path]))
        assert enter.isAccepted() and dropped.isAccepted()

    drop(tiny_bundle)
    qtbot.waitUntil(lambda: len(loaded) == 1, timeout=WAIT_MS)
    assert loaded[0].name == tiny_bundle.name and window.picker_dock.isVisible()
    window.picker.name_field.setText(TINY_ARCH)  # plain weights need their architecture, as from the picker
    drop(plain_weights)
    qtbot.waitUntil(lambda: len(loaded) == 2, timeout=WAIT_MS)
    assert loaded[1].arch == TINY_ARCH and plain_weights.name in loaded[1].source
    assert window.classify_view.model.rowCount() == 0  # nothing went to classification as a picture
