"""The fine-tuning wizard driven like a user, on a real training thread with real image folders and timm's tiny
test_efficientnet trained from scratch at 64 px (seconds per run): scan, choose, train, cancel, resume, use."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.catalog import BUILTIN_ARCH
from engine.training.dataset import DatasetScan, scan_class_folders
from engine.training.plan import TrainPlan
from engine.training.run import create_run, open_run
from gui.engine_messages import Failure
from gui.my_models_view import MY_NAME
from gui.train_pages_run import smaller_batch
from gui.train_pages_data import RUN_ROLE
from gui.train_wizard import MODEL, RESULTS, SETTINGS, TRAINING, TrainWizard
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drop_files
from tests.gui.test_model_picker import names_in_use
from tests.training.shapes import SHAPE_CLASSES, write_shapes_dataset

CLASSES = sorted(SHAPE_CLASSES)
PER_CLASS = 30


# Runs and trained models land in the per-test data folder tests/conftest.py sets up.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def shapes(tmp_path) -> Path:
    """Three classes of 30 real images each, plus a JPEG cut off mid-copy in one of them."""
    root = write_shapes_dataset(tmp_path / "shapes", per_class=PER_CLASS)
    source = next((root / "circles").glob("*.jpg"))
    (root / "circles" / "broken.jpg").write_bytes(source.read_bytes()[:300])
    return root


@pytest.fixture
def wizard(qtbot):
    wizard = TrainWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    yield wizard
    wizard.shutdown()


def click(qtbot, button) -> None:
    """Click near the left edge: a radio button's label ends long before its row does."""
    assert button.isEnabled() and button.isVisible(), f"{button.text()} cannot be clicked"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def scan_folder(wizard: TrainWizard, qtbot, folder: Path) -> DatasetScan | Failure:
    wizard.data_page.folder_field.clear()
    with qtbot.waitSignal(wizard.data_page.scan_shown, timeout=WAIT_MS) as shown:
        qtbot.keyClicks(wizard.data_page.folder_field, str(folder))
        qtbot.keyClick(wizard.data_page.folder_field, Qt.Key.Key_Return)
    return shown.args[0]


def choose_tiny_model(wizard: TrainWizard, qtbot, method: str) -> None:
    """On the model page: type timm's tiny architecture, start from random weights, pick the method; Next."""
    page = wizard.model_page
    qtbot.keyClicks(page.other_field, "test_efficientnet")
    click(qtbot, page.scratch_radio)
    click(qtbot, page.method_radios[method])
    click(qtbot, wizard.next_button)
    assert wizard.current_index == SETTINGS


def set_fast_settings(wizard: TrainWizard, **values) -> None:
    page = wizard.settings_page
    page.image_size.setValue(64)
    page.batch_size.setValue(16)
    for name, value in values.items():
        getattr(page, name).setValue(value)


def start_full_run(wizard: TrainWizard, qtbot, shapes: Path, epochs: int) -> None:
    """Through the pages to a running full fine-tune that never stops early; returns once epoch 1 is on screen."""
    scan_folder(wizard, qtbot, shapes)
    click(qtbot, wizard.next_button)
    choose_tiny_model(wizard, qtbot, "full")
    set_fast_settings(wizard, epochs=epochs, patience=0)
    with qtbot.waitSignal(wizard.training_page.epoch_shown, timeout=WAIT_MS):
        click(qtbot, wizard.next_button)
    assert wizard.bridge.is_training


def test_a_beginner_trains_a_model_and_uses_it_in_the_main_window(open_window, qtbot, shapes, tmp_path, monkeypatch):
    window = open_window()
    window.train_action.trigger()
    wizard = window.train_wizard
    assert wizard.isVisible() and not wizard.isModal()
    assert window.train_action.shortcut().toString() == "Ctrl+T"

    # 1. The folder: classes with their counts, the cut-off JPEG listed and left out, thumbnails decoded.
    data = wizard.data_page
    assert not wizard.next_button.isEnabled()
    scan = scan_folder(wizard, qtbot, shapes)
    assert isinstance(scan, DatasetScan)
    table = data.class_table
    shown = {table.item(row, 0).text(): int(table.item(row, 1).text()) for row in range(table.rowCount())}
    assert shown == {name: PER_CLASS for name in CLASSES}
    assert "corrupt" in data.problem_kinds()
    texts = [data.problems.item(row).text() for row in range(data.problems.count())]
    assert any("broken.jpg" in text for text in texts)
    assert "90 images" in data.summary.text() and "1 file left out" in data.summary.text()
    qtbot.waitUntil(lambda: data.sample_tiles_shown() == len(CLASSES), timeout=WAIT_MS)
    assert wizard.next_button.isEnabled()
    click(qtbot, wizard.next_button)

    # 2. The model: the built-in, offline model is the default; this test trains a tiny one quickly instead.
    model = wizard.model_page
    assert wizard.current_index == MODEL
    assert model.arch() == BUILTIN_ARCH and model.choice().init == "builtin" and model.choice().method == "quick"
    assert "small" in model.recommendation.text()
    choose_tiny_model(wizard, qtbot, "full")  # from random weights only the full method learns the shapes well

    # 3. Settings start at the plan's defaults ("auto" where the engine decides).
    settings = wizard.settings_page
    defaults = TrainPlan(data_dir="")
    assert settings.batch_size.value() == defaults.batch_size
    assert settings.epochs.text() == "auto (10)"  # the full method's default
    assert settings.lr.text() == "auto (0.001)"  # from scratch
    assert settings.patience.value() == defaults.early_stopping_patience
    assert wizard.next_button.text() == "Start training"
    set_fast_settings(wizard, epochs=10, lr=0.003)

    # 4. Training runs in its own thread; the curves get a point per epoch.
    training = wizard.training_page
    with qtbot.waitSignal(training.finished, timeout=WAIT_MS) as finished:
        click(qtbot, wizard.next_button)
        assert wizard.current_index == TRAINING
        assert not wizard.back_button.isEnabled()  # no leaving a page whose run is in progress
    result = finished.args[0]
    epochs = [metrics.epoch for metrics in result.history]
    for chart in (training.loss_chart, training.accuracy_chart):
        assert [x for x, _y in chart.points("train")] == epochs
        assert [x for x, _y in chart.points("validation")] == epochs
        assert chart.best == result.best_epoch
    assert [y for _x, y in training.accuracy_chart.points("validation")] == [m.val_accuracy for m in result.history]
    assert not wizard.bridge.is_training
    # The picker's My models tab lists the new model straight away.
    my_models = window.picker.my_models_page.table_model
    qtbot.waitUntil(lambda: my_models.rowCount() == 1, timeout=WAIT_MS)

    # 5. Results: the headline, the per-class table and the confusion matrix.
    click(qtbot, wizard.next_button)
    results = wizard.results_page
    assert wizard.current_index == RESULTS
    evaluation = result.evaluation
    assert evaluation.accuracy >= 0.9
    assert results.headline.text() == f"Accuracy {evaluation.accuracy * 100:.1f} %"
    rows = [results.class_table.item(row, 0).text() for row in range(results.class_table.rowCount())]
    assert rows == CLASSES
    supports = [int(results.class_table.item(row, 4).text()) for row in range(len(rows))]
    assert sum(supports) == evaluation.num_images
    assert results.matrix.labels == tuple(CLASSES)
    assert results.matrix.confusion == evaluation.confusion
    assert sum(map(sum, results.matrix.confusion)) == evaluation.num_images
    assert Path(result.report.html).is_file()

    # Export report…: a whole copy of the report folder where the user chose.
    exports = tmp_path / "exports"
    exports.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(exports))
    with qtbot.waitSignal(results.report_exported, timeout=WAIT_MS) as exported:
        click(qtbot, results.export_button)
    assert (Path(exported.args[0]) / "report.html").is_file()
    # The offscreen platform opens nothing, as a desktop without a browser: said on the page, not ignored.
    click(qtbot, results.report_button)
    assert results.error.isVisible()
    assert results.error.text().startswith(f"Could not open {result.report.html}.")

    # "Use this model": the main window loads the bundle; classifying uses its classes at once.
    click(qtbot, results.use_button)
    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == shapes.name
    assert window.settings.model_spec().source.path == str(result.bundle)
    # The picker opens My models at the new model, marked as the one in use.
    assert window.picker.tabs.currentWidget() is window.picker.my_models_page
    assert window.picker.my_models_page.chosen_model() == result.bundle
    assert names_in_use(window.picker.my_models_page.proxy, MY_NAME) == [shapes.name]
    drop_files(window.classify_view, qtbot, [next((shapes / "squares").glob("*.png"))])
    assert {top.label for top in window.classify_view.model.results[0].top} == set(CLASSES)

    click(qtbot, wizard.next_button)  # Done
    qtbot.waitUntil(lambda: window.train_wizard is None, timeout=WAIT_MS)
    assert wizard.bridge.thread.isFinished()


def test_a_folder_with_one_class_says_why_and_next_stays_disabled(wizard, qtbot, tmp_path):
    single = write_shapes_dataset(tmp_path / "single", per_class=10, classes=("circles",))
    failure = scan_folder(wizard, qtbot, single)
    assert isinstance(failure, Failure) and not failure.cancelled
    assert wizard.data_page.error.isVisible()
    assert "at least two classes" in wizard.data_page.error.text()
    assert not wizard.next_button.isEnabled()

    empty = tmp_path / "empty"
    empty.mkdir()
    failure = scan_folder(wizard, qtbot, empty)
    assert "holds no class folders" in wizard.data_page.error.text()
    assert not wizard.next_button.isEnabled()


def test_cancel_keeps_the_finished_epochs_and_resume_completes_the_run(wizard, qtbot, shapes):
    epochs = 8
    start_full_run(wizard, qtbot, shapes, epochs)
    training = wizard.training_page
    with qtbot.waitSignal(training.stopped, timeout=WAIT_MS) as stopped:
        click(qtbot, training.cancel_button)
    event = stopped.args[0]
    assert event.failure.cancelled
    assert 1 <= event.epochs_done < epochs
    run = open_run(event.run_folder)
    assert run.status == "cancelled" and run.resumable and run.epochs_done == event.epochs_done
    assert training.resume_button.isVisible() and not training.cancel_button.isVisible()
    assert len(training.loss_chart.points("train")) == event.epochs_done
    assert wizard.back_button.isEnabled() and not wizard.next_button.isEnabled()

    with qtbot.waitSignal(training.finished, timeout=WAIT_MS) as finished:
        click(qtbot, training.resume_button)
    result = finished.args[0]
    assert result.epochs_run == epochs
    assert [m.epoch for m in result.history] == list(range(1, epochs + 1))
    assert [x for x, _y in training.loss_chart.points("train")] == list(range(1, epochs + 1))
    assert open_run(event.run_folder).status == "finished"
    assert wizard.next_button.isEnabled()


def test_closing_while_training_asks_stops_the_thread_and_the_run_resumes_later(open_window, qtbot, shapes,
                                                                                monkeypatch):
    window = open_window()
    window.train_action.trigger()
    wizard = window.train_wizard
    start_full_run(wizard, qtbot, shapes, epochs=6)
    run_folder = wizard.training_page.run_folder

    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: answers.pop(0))
    wizard.close()  # "No": it keeps training
    assert wizard.isVisible() and wizard.bridge.is_training and wizard.bridge.thread.isRunning()
    wizard.close()  # "Yes": cancelled, and the thread has ended by the time close returns
    assert not answers
    assert wizard.bridge.thread.isFinished()
    assert not wizard.isVisible()
    qtbot.waitUntil(lambda: window.train_wizard is None, timeout=WAIT_MS)
    cancelled = open_run(run_folder)
    assert cancelled.status == "cancelled" and cancelled.epochs_done >= 1

    # Later: a new wizard lists the run on its first page; Resume jumps straight to training and finishes it.
    window.train_action.trigger()
    wizard = window.train_wizard
    data = wizard.data_page
    qtbot.waitUntil(lambda: data.runs.count() == 1, timeout=WAIT_MS)
    assert data.runs_box.isVisible()
    data.runs.setCurrentRow(0)
    started = []
    wizard.training_page.started.connect(started.append)
    with qtbot.waitSignal(wizard.training_page.finished, timeout=WAIT_MS) as finished:
        click(qtbot, data.resume_button)
        assert wizard.current_index == TRAINING
    # The curves start with the epochs the run already had.
    assert [m.epoch for m in started[0].history] == list(range(1, cancelled.epochs_done + 1))
    assert finished.args[0].epochs_run == 6
    assert str(finished.args[0].run_folder) == run_folder


def test_an_unfinished_run_the_user_gives_up_on_can_be_deleted(wizard, qtbot, shapes, monkeypatch):
    scan = scan_class_folders(shapes)
    kept, doomed = (create_run(TrainPlan(str(shapes), name=name), scan).folder for name in ("kept", "doomed"))
    data = wizard.data_page
    data.enter()
    qtbot.waitUntil(lambda: data.runs.count() == 2, timeout=WAIT_MS)
    assert not data.delete_run_button.isEnabled()  # nothing chosen yet
    row = next(r for r in range(data.runs.count()) if data.runs.item(r).data(RUN_ROLE) == str(doomed))
    data.runs.setCurrentRow(row)

    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: answers.pop(0))
    click(qtbot, data.delete_run_button)  # "No": nothing happens
    assert doomed.is_dir() and data.runs.count() == 2
    with qtbot.waitSignal(wizard.bridge.worker.runs_listed, timeout=WAIT_MS):
        click(qtbot, data.delete_run_button)  # "Yes"
    qtbot.waitUntil(lambda: data.runs.count() == 1, timeout=WAIT_MS)
    assert not doomed.exists() and kept.is_dir()
    assert data.runs.item(0).data(RUN_ROLE) == str(kept) and not data.delete_run_button.isEnabled()
    assert not data.error.isVisible()


def test_quitting_the_app_cancels_training_without_asking(open_window, qtbot, shapes, monkeypatch):
    window = open_window()
    window.train_action.trigger()
    wizard = window.train_wizard
    start_full_run(wizard, qtbot, shapes, epochs=6)
    run_folder = wizard.training_page.run_folder
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: pytest.fail("quitting must not ask"))
    thread = wizard.bridge.thread
    window.close()
    assert thread.isFinished()
    assert open_run(run_folder).status == "cancelled"


def test_out_of_memory_failures_offer_half_the_batch_size():
    assert smaller_batch("CUDA out of memory. Tried to allocate 2.00 GiB", 32) == 16
    assert smaller_batch("The GPU ran out of memory.", 1) == 0  # nothing smaller to try
    assert smaller_batch("The starting weights do not exist.", 32) == 0


def test_every_training_setting_can_be_changed_on_the_settings_page(wizard, qtbot, shapes, tmp_path):
    scan_folder(wizard, qtbot, shapes)
    click(qtbot, wizard.next_button)
    choose_tiny_model(wizard, qtbot, "full")
    page = wizard.settings_page
    page.advanced_toggle.click()
    for box in (page.epochs, page.batch_size, page.val_percent, page.eval_every, page.patience,
                page.grad_accumulation, page.seed, page.workers):
        box.setValue(box.value() + 3)
    page.image_size.setValue(96)
    for box in (page.lr, page.weight_decay, page.label_smoothing):
        box.setValue(box.value() + 0.01)
    for box in (page.head_lr_multiplier, page.warmup_epochs):
        box.setValue(box.value() + 1)
    for check in (page.mixed_precision, page.class_weights, page.balanced_sampling, page.progressive_unfreeze,
                  page.export_onnx):
        check.setChecked(not check.isChecked())
    page.augmentation.setCurrentIndex(0)
    page.device.setCurrentIndex(page.device.findData("cpu"))
    page.name.setText("my shapes")
    page.save_in.setText(str(tmp_path / "elsewhere"))

    plan, defaults = page.plan(), TrainPlan(data_dir="")
    unchanged = [f for f in defaults.to_dict() if getattr(plan, f) == getattr(defaults, f)]
    assert unchanged == []  # data folder, model, start and method come from the first two pages
    assert plan.output == str(tmp_path / "elsewhere" / "my-shapes") and plan.name == "my shapes"
