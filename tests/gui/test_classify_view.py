"""The classify view with a real engine thread and a real tiny model: drops, folders, paste, export, cancel, errors."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

import gui.results_table
from engine.results import ImageResult, TopClass
from gui.classify_view import ClassifyView
from gui.engine_worker import EngineBridge
from gui.result_widgets import ERROR_COLOR, SetProgress, SetProgressBar
from gui.results_table import ResultsTableModel
from tests.gui.conftest import WAIT_MS, load_and_wait

BUNDLE_LABELS = {"cat", "dog", "bird"}


@pytest.fixture
def bridge(qtbot):
    bridge = EngineBridge()
    yield bridge
    bridge.shutdown()


@pytest.fixture
def loaded_bridge(bridge, qtbot, tiny_bundle):
    load_and_wait(bridge, qtbot, tiny_bundle)
    return bridge


def _make_view(bridge, qtbot) -> ClassifyView:
    view = ClassifyView(bridge)
    qtbot.addWidget(view)
    view.resize(1100, 720)
    view.show()
    return view


@pytest.fixture
def view(loaded_bridge, qtbot) -> ClassifyView:
    return _make_view(loaded_bridge, qtbot)


@pytest.fixture
def corrupt_jpeg(photo_files, tmp_path) -> Path:
    """The first few hundred bytes of a real JPEG: what an interrupted copy leaves behind."""
    path = tmp_path / "broken.jpg"
    source = next(p for p in photo_files if p.suffix == ".jpg")
    path.write_bytes(source.read_bytes()[:300])
    return path


def file_mime(paths) -> QMimeData:
    """What a file manager puts in a drag of these files or folders."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drag_and_drop(zone, mime: QMimeData) -> tuple[QDragEnterEvent, QDropEvent]:
    """Drag `mime` over the middle of `zone` and drop it there; `enter.highlighted` is what a DropZone showed."""
    centre = zone.rect().center()
    enter = QDragEnterEvent(
        centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(zone, enter)
    highlighted_while_over = getattr(zone, "is_highlighted", None)  # only DropZones light up
    drop = QDropEvent(
        centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(zone, drop)
    enter.highlighted = highlighted_while_over  # what the user saw during the drag
    return enter, drop


def drop_files(view: ClassifyView, qtbot, paths) -> None:
    """Drop `paths` as a file manager would and wait until the view shows the finished set.

    Waiting on the worker's batch_finished would return on the engine thread, before the view has seen it.
    """
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        enter, drop = drag_and_drop(view.drop_zone, file_mime(paths))
        assert enter.isAccepted() and enter.highlighted
        assert drop.isAccepted()
    assert not view.drop_zone.is_highlighted


def cell(model: ResultsTableModel, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    return model.data(model.index(row, column), role)


def rows_by_name(model: ResultsTableModel) -> dict[str, int]:
    return {cell(model, row, ResultsTableModel.FILE): row for row in range(model.rowCount())}


def test_dropping_photos_and_a_corrupt_file_fills_the_table(view, qtbot, photo_files, corrupt_jpeg):
    files = [*photo_files, corrupt_jpeg]
    drop_files(view, qtbot, files)

    model = view.model
    assert view.pages.currentWidget() is view.batch
    rows = rows_by_name(model)
    assert sorted(rows) == sorted(p.name for p in files)

    broken = rows[corrupt_jpeg.name]
    error = model.result_at(broken).error
    assert error and corrupt_jpeg.name in error
    assert cell(model, broken, ResultsTableModel.TOP1).startswith("This file")  # its name is in the File column
    assert cell(model, broken, ResultsTableModel.TOP1, Qt.ItemDataRole.ToolTipRole) == error
    assert cell(model, broken, ResultsTableModel.TOP1, Qt.ItemDataRole.ForegroundRole).color() == ERROR_COLOR
    assert not cell(model, broken, ResultsTableModel.TOP1, Qt.ItemDataRole.DecorationRole).isNull()

    for photo in photo_files:
        row = rows[photo.name]
        result = model.result_at(row)
        assert result.error is None
        assert cell(model, row, ResultsTableModel.TOP1) == result.top[0].label
        assert {t.label for t in result.top} == BUNDLE_LABELS  # top-k is min(5, 3 classes)
        assert sum(t.prob for t in result.top) == pytest.approx(1.0, abs=1e-3)
        assert [t.prob for t in result.top] == sorted((t.prob for t in result.top), reverse=True)
        assert cell(model, row, ResultsTableModel.CONFIDENCE) == f"{result.top[0].prob * 100:.1f}%"
        assert cell(model, row, ResultsTableModel.TIME).endswith(("ms", " s"))

    bar = view.progress.bar
    assert bar.value() == bar.maximum() == len(files)
    assert bar.text() == f"{len(files)} / {len(files)}"
    assert re.match(r"Done in (\d+ ms|\d+\.\d s)( · [\d.]+ images/s)? · 1 could not be read$",
                    view.progress.summary.text())
    assert not view.progress.cancel_button.isVisible()


def test_selecting_a_row_shows_its_card_and_sorting_keeps_arriving_rows_in_order(
    view, qtbot, photo_files, corrupt_jpeg
):
    batch, model = view.batch, view.model
    # Sorted before the results arrive: each chunk takes its place in that order.
    batch.table.sortByColumn(ResultsTableModel.CONFIDENCE, Qt.SortOrder.DescendingOrder)
    drop_files(view, qtbot, [*photo_files, corrupt_jpeg])

    shown = [cell(model, row, ResultsTableModel.CONFIDENCE) for row in range(model.rowCount())]
    assert shown[-1] == ""  # the unreadable file has no confidence and sinks to the bottom
    numbers = [float(text.rstrip("%")) for text in shown[:-1]]
    assert numbers == sorted(numbers, reverse=True)
    # The first result was selected for the user as it arrived; the selection stays with it as rows sort in.
    assert batch.card.result is model.results[0]
    assert model.result_at(batch.table.currentIndex().row()) is model.results[0]

    batch.table.selectRow(2)
    selected = batch.card.result
    assert selected is model.result_at(2)
    assert batch.card.bars.visible_count() == len(selected.top) == 3
    assert not batch.card.thumbnail.pixmap().isNull()

    batch.table.sortByColumn(ResultsTableModel.NUMBER, Qt.SortOrder.AscendingOrder)
    assert [cell(model, row, ResultsTableModel.NUMBER) for row in range(model.rowCount())] == [
        str(n) for n in range(1, model.rowCount() + 1)
    ]
    assert model.result_at(batch.table.currentIndex().row()) is selected  # the selection follows its row
    assert batch.card.result is selected


def test_a_sorted_table_keeps_its_order_as_rows_arrive_and_ties_stay_in_arrival_order(qtbot):
    model = ResultsTableModel()

    def result(name: str, label: str, prob: float) -> ImageResult:
        return ImageResult(f"/photos/{name}", (TopClass(label, 0, prob),), 10.0)

    def column(column_index: int) -> list[str]:
        return [cell(model, row, column_index) for row in range(model.rowCount())]

    model.append([result("b.jpg", "cat", 0.9), result("a.jpg", "dog", 0.5), result("d.jpg", "cat", 0.7)])
    model.sort(ResultsTableModel.FILE)
    model.append([result("c.jpg", "dog", 0.6)])
    assert column(ResultsTableModel.FILE) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    model.sort(ResultsTableModel.FILE, Qt.SortOrder.DescendingOrder)
    model.append([result("e.jpg", "cat", 0.8)])
    assert column(ResultsTableModel.FILE) == ["e.jpg", "d.jpg", "c.jpg", "b.jpg", "a.jpg"]

    # Equal labels keep the order the files arrived in (the # column), whichever way the column sorts.
    model.sort(ResultsTableModel.TOP1)
    model.append([result("f.jpg", "cat", 0.1)])
    assert column(ResultsTableModel.NUMBER) == ["1", "3", "5", "6", "2", "4"]
    model.sort(ResultsTableModel.TOP1, Qt.SortOrder.DescendingOrder)
    assert column(ResultsTableModel.NUMBER) == ["2", "4", "1", "3", "5", "6"]
    model.sort(ResultsTableModel.CONFIDENCE, Qt.SortOrder.DescendingOrder)
    assert column(ResultsTableModel.CONFIDENCE) == ["90.0%", "80.0%", "70.0%", "60.0%", "50.0%", "10.0%"]


def test_a_filter_shows_the_matching_rows_as_they_arrive_and_in_the_chosen_order(qtbot):
    model = ResultsTableModel()

    def result(name: str, label: str, prob: float) -> ImageResult:
        return ImageResult(f"/photos/{name}", (TopClass(label, 0, prob),), 10.0)

    def files() -> list[str]:
        return [cell(model, row, ResultsTableModel.FILE) for row in range(model.rowCount())]

    model.append([result("IMG_1.jpg", "tabby cat", 0.9), result("IMG_2.jpg", "golden retriever", 0.5),
                  ImageResult("/photos/notes.jpg", error="This file is damaged: notes.jpg")])
    model.set_filter("  CAT ")
    assert files() == ["IMG_1.jpg"]
    model.append([result("cat_2.png", "dog", 0.7), result("x.jpg", "tiger cat", 0.3), result("y.jpg", "dog", 0.8)])
    assert files() == ["IMG_1.jpg", "cat_2.png", "x.jpg"]  # by file name or by top-1 class
    model.sort(ResultsTableModel.CONFIDENCE, Qt.SortOrder.DescendingOrder)
    assert files() == ["IMG_1.jpg", "cat_2.png", "x.jpg"]
    model.append([result("z.jpg", "Persian cat", 0.8)])
    assert files() == ["IMG_1.jpg", "z.jpg", "cat_2.png", "x.jpg"]  # an arriving row takes its sorted place
    model.set_filter("tiger cat")  # every word, anywhere
    assert files() == ["x.jpg"]
    model.set_filter("damaged")
    assert files() == ["notes.jpg"]
    model.set_filter("")
    assert files() == ["IMG_1.jpg", "y.jpg", "z.jpg", "cat_2.png", "IMG_2.jpg", "x.jpg", "notes.jpg"]
    assert model.result_count == len(model.results) == 7


def test_filtering_the_table_keeps_the_card_on_a_shown_row_and_export_saves_every_result(
    view, qtbot, photo_files, corrupt_jpeg, tmp_path
):
    drop_files(view, qtbot, [*photo_files, corrupt_jpeg])
    batch, model = view.batch, view.model
    assert not batch.shown_label.isVisible()
    label = model.result_at(0).top[0].label
    expected = {r.path for r in model.results if r.error is None and r.top[0].label == label}

    view.window().activateWindow()
    qtbot.waitActive(view.window())
    qtbot.keyClick(batch.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # Find goes to the filter
    assert batch.filter_field.hasFocus()
    qtbot.keyClicks(batch.filter_field, label.upper())
    assert {model.result_at(row).path for row in range(model.rowCount())} == expected
    assert batch.shown_label.isVisible()
    assert batch.shown_label.text() == f"{len(expected)} of {len(photo_files) + 1} shown"
    assert batch.card.result.path in expected  # the card shows a row the table shows
    batch.filter_field.setText("no such class")
    assert model.rowCount() == 0 and batch.card.result is None

    with qtbot.waitSignal(view.export_finished):
        view.save_results(str(tmp_path / "all.json"))
    assert len(json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))) == len(photo_files) + 1

    drop_files(view, qtbot, photo_files[:2])  # a new set shows all of its results
    assert batch.filter_field.text() == "" and model.rowCount() == 2 and not batch.shown_label.isVisible()


def test_a_long_batch_shows_its_pace_and_the_time_left(qtbot):
    bar = SetProgressBar()
    qtbot.addWidget(bar)
    bar.show_progress(SetProgress(received=3, total=15000, running=True, seconds=0.5))
    assert bar.summary.text() == "Classifying…"  # too early to tell a pace
    bar.show_progress(SetProgress(received=500, total=15000, running=True, seconds=10.0))
    assert bar.bar.text() == "500 / 15,000"
    assert bar.summary.text() == "Classifying… · About 4:50 left · 50 images/s"
    bar.show_progress(SetProgress(received=15000, total=15000, failed=2, seconds=300.0))
    assert bar.summary.text() == "Done in 5:00 · 50 images/s · 2 could not be read"


def test_a_narrow_window_keeps_file_names_and_labels_readable(view, qtbot, photo_files):
    """A laptop screen with the model picker docked: Time gives way (the card shows it), never File and Top-1."""
    drop_files(view, qtbot, photo_files)
    table, header = view.batch.table, view.batch.table.horizontalHeader()
    names = (ResultsTableModel.FILE, ResultsTableModel.TOP1)

    def fits(time_shown: bool) -> bool:
        return (table.isColumnHidden(ResultsTableModel.TIME) != time_shown
                and table.horizontalScrollBar().maximum() == 0  # every column in view, nothing to scroll to
                and all(header.sectionSize(column) >= table.NAMES_MIN_WIDTH for column in names))

    qtbot.waitUntil(lambda: fits(time_shown=True), timeout=WAIT_MS)  # 1100 px wide: every column
    view.resize(720, 720)  # what is left beside the picker on a 1280-pixel screen
    qtbot.waitUntil(lambda: table.isColumnHidden(ResultsTableModel.TIME), timeout=WAIT_MS)
    assert table.horizontalScrollBar().maximum() == 0
    longest = max(table.fontMetrics().horizontalAdvance(cell(view.model, row, ResultsTableModel.TOP1))
                  for row in range(view.model.rowCount()))
    assert header.sectionSize(ResultsTableModel.TOP1) >= min(longest, 80)  # "bird", "cat", "dog": whole
    view.resize(1100, 720)
    qtbot.waitUntil(lambda: fits(time_shown=True), timeout=WAIT_MS)


def test_dropping_a_folder_classifies_its_images_recursively(view, qtbot, photo_files):
    album = photo_files[0].parent.parent / "album"
    deeper = album / "trip" / "day 2"
    deeper.mkdir(parents=True)
    shutil.copy(photo_files[0], album / photo_files[0].name)
    shutil.copy(photo_files[1], deeper / photo_files[1].name)
    (album / "notes.txt").write_text("not a picture")

    with qtbot.waitSignal(view.folder_used, timeout=WAIT_MS) as used:
        drop_files(view, qtbot, [album])

    assert used.args == [str(album)]
    assert sorted(rows_by_name(view.model)) == sorted([photo_files[0].name, photo_files[1].name])
    assert all(r.error is None for r in view.model.results)


def test_one_image_shows_a_result_card(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files[:1])

    card = view.single_card
    assert view.pages.currentWidget() is view.single_page
    assert card.isVisible()
    assert card.bars.visible_count() == 3
    shown_labels = [label.text() for label, _bar, _percent in card.bars.rows[:3]]
    assert shown_labels == [t.label for t in card.result.top]
    assert [percent.text() for _label, _bar, percent in card.bars.rows[:3]] == [
        f"{t.prob * 100:.1f}%" for t in card.result.top
    ]
    pixmap = card.thumbnail.pixmap()
    assert not pixmap.isNull() and max(pixmap.width(), pixmap.height()) <= card.THUMBNAIL_BOX
    assert card.timing.text().endswith(" ms") or card.timing.text().endswith(" s")


def table_as_seen(model: ResultsTableModel) -> dict[str, tuple[str, str]]:
    """File name -> (top-1 label or the full error from the tooltip, confidence) as the table shows them."""
    seen = {}
    for row in range(model.rowCount()):
        failed = model.result_at(row).error is not None
        role = Qt.ItemDataRole.ToolTipRole if failed else Qt.ItemDataRole.DisplayRole
        top1 = cell(model, row, ResultsTableModel.TOP1, role)
        seen[cell(model, row, ResultsTableModel.FILE)] = (top1, cell(model, row, ResultsTableModel.CONFIDENCE))
    return seen


def percent(prob) -> str:
    return f"{float(prob) * 100:.1f}%" if prob != "" else ""


def test_export_writes_csv_and_json_matching_the_table(view, qtbot, photo_files, corrupt_jpeg, tmp_path, monkeypatch):
    drop_files(view, qtbot, [*photo_files, corrupt_jpeg])
    table = table_as_seen(view.model)
    offered = []

    def save_dialog(answer: tuple[str, str]):
        def ask(_parent, _caption, default, filters):
            offered.append((default, filters))
            return answer

        return ask

    # A name typed without a suffix gets the one of the format picked in the dialog.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog((str(tmp_path / "results"), "JSON (*.json)")))
    with qtbot.waitSignal(view.export_finished) as saved:
        view.export_results()  # written on the export thread, so a huge table never freezes the window
    assert saved.args == [True]
    default, filters = offered[-1]
    assert Path(default).name.startswith("classifications-") and default.endswith(".csv")
    assert "*.csv" in filters and "*.json" in filters
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {
        Path(e["path"]).name: (e["top"][0]["label"], percent(e["top"][0]["prob"])) if "top" in e else (e["error"], "")
        for e in saved
    } == table

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog((str(tmp_path / "results.csv"), "")))
    with qtbot.waitSignal(view.export_finished):
        view.export_results()
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {Path(r["path"]).name: (r["top1_label"] or r["error"], percent(r["top1_prob"])) for r in rows} == table
    assert "results.csv" in view.note.text()
    assert view.banner.isHidden()


def test_an_export_that_cannot_be_written_says_so_inline(view, qtbot, photo_files, tmp_path):
    drop_files(view, qtbot, photo_files[:2])
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")

    with qtbot.waitSignal(view.export_finished) as saved:
        view.save_results(str(blocker / "results.csv"))
    assert saved.args == [False]

    assert view.banner.isVisible()
    assert "Could not save" in view.banner.message_label.text()
    assert view.banner.hint_label.text()


def test_cancel_stops_a_large_batch_early(view, qtbot, photo_files, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    copies = [shutil.copy(photo_files[2], many / f"copy{i:03}{photo_files[2].suffix}") for i in range(80)]
    finished = []
    view.bridge.worker.batch_finished.connect(finished.append)
    view.bridge.worker.image_classified.connect(view.cancel)  # the user clicks Cancel once results show

    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.add_paths([str(p) for p in copies])

    view.bridge.worker.image_classified.disconnect(view.cancel)
    # finished.append runs on the engine thread, which may not have reached it when the view's queued slot ran.
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    assert [event.cancelled for event in finished] == [True]
    assert 0 < view.model.rowCount() < len(copies)
    assert view.progress.summary.text().startswith(f"Cancelled · {view.model.rowCount()} of {len(copies)}")
    assert not view.progress.cancel_button.isVisible()


def test_a_drop_while_a_batch_runs_joins_it(view, qtbot, photo_files, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    copies = [str(shutil.copy(photo_files[0], many / f"copy{i:02}.jpg")) for i in range(24)]
    view.add_paths(copies)
    view.add_paths([str(photo_files[1])])  # dropped while the first batch is still running

    assert "1 more drop waiting" in view.progress.summary.text()
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        pass
    assert view.progress.summary.text().startswith("Done")
    assert view.model.rowCount() == 25
    assert view.progress.bar.text() == "25 / 25"

    drop_files(view, qtbot, [photo_files[2]])  # once everything is done, a drop starts a fresh set
    assert view.model.rowCount() == 1
    assert view.pages.currentWidget() is view.single_page


def test_without_a_model_the_view_says_so_inline(bridge, qtbot, photo_files):
    view = _make_view(bridge, qtbot)
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.add_paths([str(photo_files[0])])

    assert view.banner.isVisible()
    assert view.banner.message_label.text() == "No model is loaded yet."
    assert view.banner.hint_label.text()
    assert view.model.rowCount() == 0
    assert view.pages.currentWidget() is view.invitation_page
    assert view.progress.isHidden()


def test_dropped_text_is_refused_quietly(bridge, qtbot):
    view = _make_view(bridge, qtbot)
    mime = QMimeData()
    mime.setText("just some words")
    enter, drop = drag_and_drop(view.drop_zone, mime)

    assert not enter.isAccepted() and not enter.highlighted  # the cursor says "no drop"; nothing lights up
    assert not drop.isAccepted()
    assert view.model.rowCount() == 0
    assert view.pages.currentWidget() is view.invitation_page and view.banner.isHidden()


def test_pasting_a_picture_classifies_it(view, qtbot, photo_files):
    QApplication.clipboard().setImage(QImage(str(photo_files[0])))
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.paste_from_clipboard()

    result = view.model.result_at(0)
    assert view.model.rowCount() == 1
    assert result.path == "Pasted image" and result.error is None
    assert {t.label for t in result.top} == BUNDLE_LABELS
    assert view.single_card.title.text() == "Pasted image"
    assert not view.single_card.thumbnail.pixmap().isNull()


def test_pasting_nothing_useful_explains_what_to_copy(view):
    QApplication.clipboard().setText("hello")
    view.paste_from_clipboard()

    assert view.banner.isVisible()
    assert "clipboard" in view.banner.message_label.text()
    assert view.model.rowCount() == 0


def test_large_batches_keep_thumbnails_within_budget(view, qtbot, photo_files, monkeypatch):
    monkeypatch.setattr(gui.results_table, "THUMBNAIL_BUDGET_BYTES", 1)  # keeps at most the newest thumbnail
    drop_files(view, qtbot, photo_files)

    results = view.model.results
    assert [r.thumbnail is not None for r in results] == [False] * (len(results) - 1) + [True]
    card = view.batch.card
    view.batch.table.selectRow(len(results) - 1)
    view.batch.table.selectRow(0)
    assert card.bars.visible_count() == 3  # the result itself stays
    # The dropped thumbnail is decoded again from the file, off the GUI thread, when the row is chosen.
    assert card.thumbnail.text() == "Loading preview…"
    qtbot.waitUntil(lambda: not card.thumbnail.pixmap().isNull(), timeout=WAIT_MS)
    assert max(card.thumbnail.pixmap().width(), card.thumbnail.pixmap().height()) == card.THUMBNAIL_BOX

    # A file deleted since it was classified has no preview (row 2 on the way, as arrow keys would pass it).
    Path(results[1].path).unlink()
    view.batch.table.selectRow(2)
    view.batch.table.selectRow(1)
    qtbot.waitUntil(lambda: card.thumbnail.text() == "No preview", timeout=WAIT_MS)
