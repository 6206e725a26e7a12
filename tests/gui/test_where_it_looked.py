"""A result card's "Where it looked": the engine thread's heat map shown on the card, in a real window."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

from engine.decode import decode_image
from engine.explain import explain
from engine.models import load_model
from engine.predict import Classifier
from engine.specs import Bundle, ModelSpec, builtin_model_spec
from gui.result_widgets import ERROR_COLOR
from tests.conftest import make_bundle
from tests.gui.conftest import WAIT_MS, load_and_wait
from tests.gui.test_classify_view import drop_files


def look(looked, qtbot, answers: list | None = None) -> None:
    """Press the card's button and wait for the engine thread's answer to be on the card."""
    if answers is not None:
        looked.bridge.worker.explained.connect(answers.append)
    looked.button.click()
    assert looked.button.isChecked() and looked.looking
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)


def test_the_card_shows_where_the_built_in_model_looked_and_then_the_photo_again(open_window, qtbot, tmp_path,
                                                                                 photo_arrays):
    photo = tmp_path / "cat.jpg"
    Image.fromarray(photo_arrays["chelsea"]).save(photo)
    window = open_window()
    answers = []
    window.bridge.worker.model_loaded.connect(answers.append)
    window.bridge.request_load(builtin_model_spec())
    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    view = window.classify_view
    drop_files(view, qtbot, [photo])
    card, looked = view.single_card, view.single_looked
    assert looked.isVisible() and not looked.caption.isVisible()
    photo_size = card.thumbnail.pixmap().size()
    assert (photo_size.width(), photo_size.height()) == (192, 128)  # the whole photo, 451x300

    explained = []
    look(looked, qtbot, explained)

    # What the card shows is what the engine computes for this photo and its top class (the window runs the
    # model in ONNX Runtime, the check in PyTorch: their probabilities agree within 1e-4).
    top = card.result.top[0]
    expected = explain(Classifier(load_model(builtin_model_spec())), decode_image(str(photo), 256), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert expected.heat.max() == 1.0  # the cat's face matters: there is heat to see
    shown = card.thumbnail.pixmap()
    assert (shown.width(), shown.height()) == (192, 192)  # the square the model sees, in the photo's place
    assert looked.caption.isVisible() and f"“{top.label}”" in looked.caption.text()
    assert f"{top.prob:.1%}" in looked.caption.text() and looked.button.isChecked()
    assert looked.button.text() == "Show the photo"  # what pressing it again does

    looked.button.click()  # the photo again
    restored = card.thumbnail.pixmap().size()
    assert (restored.width(), restored.height()) == (192, 128)
    assert not looked.caption.isVisible() and not looked.button.isChecked()
    assert looked.button.text() == "Where it looked"


@pytest.fixture
def view(window_with_tiny_model):
    return window_with_tiny_model.classify_view


def test_choosing_another_row_of_a_batch_shows_its_photo_not_the_last_heat_map(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files)
    view.batch.table.selectRow(0)
    card, looked = view.batch.card, view.batch_looked
    look(looked, qtbot)
    assert looked.caption.isVisible() and card.result.top[0].label in looked.caption.text()
    heat = card.thumbnail.pixmap().toImage()

    view.batch.show_selected()  # as rows arriving in a sorted table show the chosen row again
    assert card.thumbnail.pixmap().toImage() == heat and looked.caption.isVisible() and looked.button.isChecked()

    view.batch.table.selectRow(1)
    assert card.result is view.model.result_at(1)
    assert not looked.button.isChecked() and not looked.caption.isVisible()
    look(looked, qtbot)  # and the new row can be looked at in turn
    assert card.result.top[0].label in looked.caption.text()


def test_a_photo_deleted_since_it_was_classified_is_said_in_red(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files[:1])
    photo_files[0].unlink()
    looked = view.single_looked
    look(looked, qtbot)
    assert "cannot be read again" in looked.caption.text() and "open the photo again" in looked.caption.text()
    assert ERROR_COLOR.name() in looked.caption.styleSheet()
    assert not looked.button.isChecked()


def test_after_switching_to_a_model_without_the_class_the_card_says_to_classify_again(
    view, qtbot, photo_files, tmp_path
):
    drop_files(view, qtbot, photo_files[:1])
    other = make_bundle(tmp_path / "parts", labels=("scratch", "dent", "good"))
    load_and_wait(view.bridge, qtbot, other)
    looked = view.single_looked
    look(looked, qtbot)
    label = view.single_card.result.top[0].label
    assert f"has no class “{label}”" in looked.caption.text() and "classify it again" in looked.caption.text()


def test_after_switching_to_a_model_with_the_same_classes_it_looks_with_the_new_one(view, qtbot, photo_files,
                                                                                    tmp_path):
    drop_files(view, qtbot, photo_files[:1])
    retrained = make_bundle(tmp_path / "retrained", seed=7)  # cat, dog, bird, other weights
    load_and_wait(view.bridge, qtbot, retrained)
    looked, top = view.single_looked, view.single_card.result.top[0]
    explained = []
    look(looked, qtbot, explained)
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(retrained))))),
                       decode_image(str(photo_files[0])), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert f"“{top.label}”" in looked.caption.text()


def click_bar(card, row: int, qtbot) -> None:
    """A click on a bar's label, as the user clicks it (Qt hands the label's click to the bars around it)."""
    label = card.bars.rows[row][0]
    qtbot.mouseClick(label, Qt.MouseButton.LeftButton, pos=label.rect().center())


def test_a_click_on_another_class_bar_shows_where_the_model_looked_for_that_class(view, qtbot, photo_files,
                                                                                  tiny_bundle):
    drop_files(view, qtbot, photo_files[:1])
    card, looked = view.single_card, view.single_looked
    second = card.result.top[1]
    explained = []
    looked.bridge.worker.explained.connect(explained.append)

    click_bar(card, 1, qtbot)
    assert looked.looking and looked.button.isChecked() and card.bars.rows[1][0].font().bold()
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle))))),
                       decode_image(str(photo_files[0])), second.index)
    assert np.abs(explained[-1].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert f"“{second.label}”" in looked.caption.text() and looked.button.text() == "Show the photo"
    assert not card.bars.rows[0][0].font().bold()
    second_map = card.thumbnail.pixmap().toImage()

    looked.button.click()  # the photo again, then the top class by the button
    assert not looked.button.isChecked() and not card.bars.rows[1][0].font().bold()
    look(looked, qtbot)
    assert f"“{card.result.top[0].label}”" in looked.caption.text() and card.bars.rows[0][0].font().bold()
    assert "Click another class to see where it looked" in looked.caption.text()  # said with the top class's map
    asked = len(explained)

    click_bar(card, 1, qtbot)  # made once for this photo: shown at once, not asked again
    assert not looked.looking and card.thumbnail.pixmap().toImage() == second_map
    assert f"“{second.label}”" in looked.caption.text()
    click_bar(card, 1, qtbot)  # the bar of the heat map shown: the photo again
    assert not looked.button.isChecked() and not looked.caption.isVisible()
    assert (card.thumbnail.pixmap().width(), card.thumbnail.pixmap().height()) != (192, 192)
    assert len(explained) == asked


def test_heat_maps_made_by_the_model_used_before_are_made_again(view, qtbot, photo_files, tmp_path):
    drop_files(view, qtbot, photo_files[:1])
    card, looked = view.single_card, view.single_looked
    before = []
    look(looked, qtbot, before)
    retrained = make_bundle(tmp_path / "retrained", seed=7)  # the same classes, other weights
    load_and_wait(view.bridge, qtbot, retrained)
    # The map on the card stays there, and can still be copied: it goes with the bars beside it.
    menu = right_click(card.thumbnail)
    {action.text(): action for action in menu.actions()}["Copy picture"].trigger()
    copied = QApplication.clipboard().image().convertToFormat(QImage.Format.Format_RGB888)
    assert copied.pixelColor(5, 7).getRgb()[:3] == tuple(int(v) for v in before[0].overlay[7, 5])
    looked.button.click()  # the photo again
    assert right_click(card.thumbnail) is None
    explained = []
    look(looked, qtbot, explained)  # asked again, of the model in use
    top = view.single_card.result.top[0]
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(retrained))))),
                       decode_image(str(photo_files[0])), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2


def test_a_pasted_picture_can_be_looked_at(view, qtbot, photo_files, tiny_bundle):
    QApplication.clipboard().setImage(QImage(str(photo_files[1])))  # the PNG, so the pasted pixels are the file's
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.paste_from_clipboard()
    card, looked = view.single_card, view.single_looked
    assert card.result.path == "Pasted image"
    explained = []
    look(looked, qtbot, explained)
    top = card.result.top[0]
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle))))),
                       decode_image(str(photo_files[1])), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert f"“{top.label}”" in looked.caption.text() and ERROR_COLOR.name() not in looked.caption.styleSheet()


def test_pictures_pasted_beyond_the_memory_budget_let_the_oldest_go(view, qtbot, photo_files, monkeypatch):
    def paste() -> None:
        QApplication.clipboard().setImage(QImage(str(photo_files[0])))
        with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
            view.paste_from_clipboard()

    paste()
    size = len(view.pasted.get("Pasted image"))
    monkeypatch.setattr(type(view.pasted), "BUDGET", 2 * size + size // 2)  # room for two of them
    paste()
    assert view.pasted.get("Pasted image") and view.pasted.get("Pasted image 2")
    paste()  # a third: the oldest is let go
    assert view.pasted.get("Pasted image") is None
    assert view.pasted.get("Pasted image 2") and view.pasted.get("Pasted image 3")


def test_the_keyboard_reaches_every_class_bar(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files[:1])
    card, looked = view.single_card, view.single_looked
    bars = card.bars
    view.window().activateWindow()
    looked.button.setFocus()
    qtbot.keyClick(looked.button, Qt.Key.Key_Backtab)  # Tab reaches the bars, right before the button
    qtbot.waitUntil(bars.hasFocus, timeout=WAIT_MS)
    explained = []
    looked.bridge.worker.explained.connect(explained.append)

    qtbot.keyClick(bars, Qt.Key.Key_Down)  # nothing marked yet: the top class
    assert looked.row == 0 and bars.rows[0][0].font().bold()
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)
    qtbot.keyClick(bars, Qt.Key.Key_Down)  # the next class
    assert looked.row == 1 and bars.rows[1][0].font().bold() and not bars.rows[0][0].font().bold()
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)
    assert f"“{card.result.top[1].label}”" in looked.caption.text()
    assert [f"“{top.label}”" in answer.caption for answer, top in zip(explained, card.result.top)] == [True, True]

    qtbot.keyClick(bars, Qt.Key.Key_1)  # by its place: the top class's heat map, kept, shown at once
    assert looked.row == 0 and not looked.looking and len(explained) == 2
    qtbot.keyClick(bars, Qt.Key.Key_Up)  # already the top row: stays
    assert looked.row == 0
    qtbot.keyClick(bars, Qt.Key.Key_Space)  # the marked row again: the photo
    assert looked.row is None and not looked.button.isChecked() and not looked.caption.isVisible()
    last = bars.visible_count()
    qtbot.keyClick(bars, Qt.Key.Key_1 + last)  # past the last bar: nothing
    assert looked.row is None


def right_click(label) -> object:
    """The label's context menu, as a right-click opens it (None when it offers none): the menu this click made,
    not one an earlier click left open."""
    from PySide6.QtGui import QContextMenuEvent

    before = label.findChildren(QMenu)
    centre = label.rect().center()
    QApplication.sendEvent(label, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre, label.mapToGlobal(centre)))
    return next((menu for menu in label.findChildren(QMenu) if menu not in before), None)


def test_a_heat_map_is_copied_or_saved_from_its_right_click_menu(view, qtbot, photo_files, tmp_path, monkeypatch):
    drop_files(view, qtbot, photo_files[:1])
    card, looked = view.single_card, view.single_looked
    assert right_click(card.thumbnail) is None  # the photo: nothing to copy or save
    explained = []
    look(looked, qtbot, explained)
    overlay = explained[0].overlay

    menu = right_click(card.thumbnail)
    actions = {action.text(): action for action in menu.actions()}
    assert list(actions) == ["Copy picture", "Save picture…"]
    actions["Copy picture"].trigger()
    copied = QApplication.clipboard().image().convertToFormat(QImage.Format.Format_RGB888)
    assert (copied.width(), copied.height()) == (overlay.shape[1], overlay.shape[0])
    assert copied.pixelColor(5, 7).getRgb()[:3] == tuple(int(v) for v in overlay[7, 5])

    offered = []

    def save_dialog(_parent, _title, default, _filters):
        offered.append(default)
        return str(tmp_path / "for the report"), ""  # no suffix: a PNG

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    actions["Save picture…"].trigger()
    label = card.result.top[0].label.split(",")[0]
    assert offered == [str(photo_files[0].parent / f"{photo_files[0].stem}-where-it-looked-{label}.png")]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "for the report.png")), overlay)

    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args: (str(blocked / "heat.png"), ""))
    actions["Save picture…"].trigger()  # cannot be written there: said in red under the card, nothing lost
    assert looked.caption.text().startswith("Could not save") and ERROR_COLOR.name() in looked.caption.styleSheet()
