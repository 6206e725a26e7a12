"""The model picker on its own: the real catalog in a real table, search, numeric sorting, names, files, devices."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from safetensors.torch import save_file

from engine.catalog import catalog
from engine.devices import available_devices, supported_precisions
from engine.models import Bundle, Hub, ModelSpec, WeightsFile, create_architecture
from gui.model_picker import ARCH_ROLE, NAME, PARAMS, TAGS, ModelPicker
from tests.conftest import TINY_ARCH, make_bundle


@pytest.fixture
def picker(qtbot) -> ModelPicker:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.resize(520, 700)
    picker.show()
    qtbot.waitExposed(picker)
    return picker


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
    assert "Unknown model 'resnet5O'" in picker.message
    assert "Did you mean" in picker.message

    qtbot.keyClicks(picker.name_field, "x")  # typing again clears the message
    assert picker.message == ""


def test_a_typed_timm_name_loads_from_the_hub(picker, qtbot):
    qtbot.keyClicks(picker.name_field, "resnet18.a1_in1k")
    with qtbot.waitSignal(picker.load_requested) as requested:
        qtbot.mouseClick(picker.load_button, Qt.MouseButton.LeftButton)
    assert requested.args == [ModelSpec("resnet18.a1_in1k", Hub()), picker.device, picker.precision]


def test_double_clicking_a_row_loads_that_model(picker, qtbot):
    arch = select_row(picker, 3)
    assert picker.name_field.text() == arch
    rect = picker.table.visualRect(picker.proxy.index(3, NAME))
    with qtbot.waitSignal(picker.load_requested) as requested:
        # A real double-click is a press then a double-click event; the view only acts on the row it pressed.
        qtbot.mouseClick(picker.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(picker.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert requested.args[0] == ModelSpec(arch, Hub())


def test_device_choice_limits_precisions(picker):
    assert picker.device_box.itemData(0) == "auto"
    assert [picker.device_box.itemData(i) for i in range(1, picker.device_box.count())] == available_devices()
    picker.precision_box.setCurrentIndex(picker.precision_box.findData("fp32"))
    for device in available_devices():
        picker.device_box.setCurrentIndex(picker.device_box.findData(device))
        shown = [picker.precision_box.itemData(i) for i in range(picker.precision_box.count())]
        assert shown == supported_precisions(device)
        assert picker.precision == "fp32"  # kept: every device supports it


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
