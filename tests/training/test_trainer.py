"""Training from a user's class folders: both methods really learn, runs resume after cancel, saved files stay whole."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Log, Progress
from engine.models import Bundle, ModelSpec, load_model
from engine.predict import Classifier
from engine.training.dataset import scan_class_folders
from engine.training.plan import EpochMetrics, StepMetrics, TrainPlan
from engine.training.run import CHECKPOINT_FILE, RUN_FILE, create_run, delete_run, list_runs, open_run
from engine.training.trainer import train_run
from tests.training.shapes import SHAPE_CLASSES, write_shapes_dataset

TINY = {"arch": "test_resnet", "init": "scratch", "image_size": 64, "batch_size": 16}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=30, seed=0)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("held_out") / "shapes", per_class=6, seed=99)


def start(data: Path, **settings) -> Path:
    plan = TrainPlan(str(data), **{**TINY, **settings})
    return create_run(plan, scan_class_folders(data)).folder


def classify_held_out(bundle: Path, held_out: Path) -> dict[str, list[str]]:
    """What the normal classify path says about each held-out image, by true class."""
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(bundle))), device="cpu"))
    said = {}
    for kind in SHAPE_CLASSES:
        files = sorted((held_out / kind).iterdir())
        said[kind] = [result.top[0].label for result in classifier.classify_files(files)]
    return said


@pytest.mark.parametrize("method, epochs", [("quick", 0), ("full", 12)])
def test_both_methods_learn_from_scratch_and_the_bundle_classifies_held_out_images(shapes, held_out, method, epochs):
    events = []
    result = train_run(start(shapes, method=method, epochs=epochs), events.append)

    assert result.evaluation.accuracy >= 0.9
    assert result.bundle.is_dir() and result.report.html.is_file()
    epochs_seen = [e for e in events if isinstance(e, EpochMetrics)]
    assert [e.epoch for e in epochs_seen] == list(range(1, result.epochs_run + 1))
    assert result.best_epoch == max(epochs_seen, key=lambda e: (e.val_accuracy, -e.val_loss)).epoch
    assert any(isinstance(e, StepMetrics) and e.lr > 0 and e.images_per_second > 0 for e in events)

    said = classify_held_out(result.bundle, held_out)
    for kind, labels in said.items():
        assert labels.count(kind) >= len(labels) - 1, f"{kind}: {labels}"
    info = json.loads((result.bundle / "bundle.json").read_text())
    assert info["labels"] == sorted(SHAPE_CLASSES)
    assert info["provenance"]["training"]["method"] == method
    assert info["provenance"]["metrics"]["val_accuracy"] == pytest.approx(result.evaluation.accuracy)
    assert info["provenance"]["dataset"]["images_per_class"] == {k: 30 for k in sorted(SHAPE_CLASSES)}
    assert open_run(result.run_folder).status == "finished"
    # Nothing resumes a finished run: its checkpoint, best weights and cached features are deleted, run.json stays.
    assert [path.name for path in result.run_folder.iterdir()] == [RUN_FILE]
    assert [run.bundle for run in list_runs()] == [str(result.bundle)]


def test_the_beginner_default_fine_tunes_the_built_in_model_offline(shapes, held_out):
    """Pressing Next all the way: the built-in EfficientNet-Lite0, the quick method, no network."""
    result = train_run(create_run(TrainPlan(str(shapes)), scan_class_folders(shapes)).folder)
    assert result.evaluation.accuracy == 1.0
    said = classify_held_out(result.bundle, held_out)
    assert all(labels == [kind] * len(labels) for kind, labels in said.items())


def test_cancel_keeps_the_last_epoch_and_resume_continues_with_the_same_split(shapes):
    folder = start(shapes, method="full", epochs=3, early_stopping_patience=0)
    split_before = json.loads((folder / "run.json").read_text())["split"]
    cancel = CancelToken()

    def cancel_after_first_epoch(event):
        if isinstance(event, EpochMetrics):
            cancel.cancel()

    with pytest.raises(Cancelled):
        train_run(folder, cancel_after_first_epoch, cancel)
    run = open_run(folder)
    assert (run.status, run.epochs_done) == ("cancelled", 1)
    assert [r.folder for r in list_runs() if r.resumable] == [folder]

    resumed = []
    result = train_run(folder, resumed.append)
    assert [e.epoch for e in resumed if isinstance(e, EpochMetrics)] == [2, 3]
    assert min(e.epoch for e in resumed if isinstance(e, StepMetrics)) == 2
    assert [h.epoch for h in result.history] == [1, 2, 3]
    assert json.loads((folder / "run.json").read_text())["split"] == split_before
    # Resuming repeats exactly what an uninterrupted run does (order, augmentations and dropout follow the seed).
    uninterrupted = train_run(start(shapes, method="full", epochs=3, early_stopping_patience=0))
    assert [h.val_loss for h in result.history] == pytest.approx([h.val_loss for h in uninterrupted.history])
    with pytest.raises(UserFacingError, match="already finished"):
        train_run(folder)


@pytest.mark.parametrize("method", ["quick", "full"])
def test_a_photo_damaged_after_the_scan_is_said_once_and_another_stands_in(tmp_path, method):
    data = write_shapes_dataset(tmp_path / "shapes", per_class=12, seed=3)
    # Batches of 2: a full fine-tune's epoch then leaves out at most one training photo.
    settings = {**TINY, "batch_size": 2, "method": method, "epochs": 3, "early_stopping_patience": 0}
    folder = create_run(TrainPlan(str(data), **settings), scan_class_folders(data)).folder
    run = open_run(folder)
    damaged = [Path(run.train[0].path), Path(run.val[-1].path)]
    for photo in damaged:  # an interrupted copy over the photo, after the wizard's scan
        photo.write_bytes(photo.read_bytes()[:200])
    events = []

    result = train_run(folder, events.append)

    warnings = [event.text for event in events if isinstance(event, Log) and event.level == "warning"]
    assert len(warnings) == 2, warnings  # one each, however many epochs read it
    for photo in damaged:
        said = next(text for text in warnings if photo.name in text)
        assert "truncated" in said and "Another photo stood in for it" in said
    assert result.evaluation.num_images == len(run.val)


def test_deleting_a_run_removes_its_folder_and_never_a_folder_that_is_no_run(shapes, tmp_path):
    folder = start(shapes, method="full", epochs=1)
    delete_run(folder)
    assert not folder.exists() and list_runs() == []
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"a photo")
    with pytest.raises(UserFacingError, match="not a training run"):
        delete_run(photos)
    assert (photos / "cat.jpg").read_bytes() == b"a photo"


def test_quick_features_are_cached_for_a_resumed_run_and_a_damaged_cache_is_rebuilt(shapes):
    folder = start(shapes, method="quick", epochs=4)
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        train_run(folder, lambda e: isinstance(e, EpochMetrics) and e.epoch == 2 and cancel.cancel(), cancel)

    resumed = []
    train_run(folder, resumed.append)
    assert not [e for e in resumed if isinstance(e, Progress) and e.what == "Computing features"]

    again = start(shapes, method="quick")
    (again / "features.safetensors").write_bytes(b"not a safetensors file")
    rebuilt = []
    assert train_run(again, rebuilt.append).evaluation.accuracy >= 0.9
    assert [e for e in rebuilt if isinstance(e, Progress) and e.what == "Computing features"]


def test_a_failed_save_leaves_the_previous_model_whole(shapes, held_out, monkeypatch):
    output = shapes.parent / "my_shapes_model"
    first = train_run(start(shapes, output=str(output)))
    before = (output / "model.safetensors").read_bytes()

    import safetensors.torch

    def disk_fills_up(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_fills_up)  # engine.bundle imports it when saving
    with pytest.raises(UserFacingError, match="disk is full"):
        train_run(start(shapes, output=str(output), seed=1))

    assert (output / "model.safetensors").read_bytes() == before
    assert not [p for p in output.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert classify_held_out(first.bundle, held_out)["circles"].count("circles") >= 5


def test_a_checkpoint_write_that_fails_keeps_the_previous_checkpoint(shapes, monkeypatch):
    folder = start(shapes, method="full", epochs=2, early_stopping_patience=0)
    real_save = torch.save
    saves = []

    def fail_on_second_save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fail_on_second_save)
    with pytest.raises(UserFacingError, match="disk is full"):
        train_run(folder)
    monkeypatch.undo()
    checkpoint = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 1
    assert open_run(folder).status == "failed"
    assert [h.epoch for h in train_run(folder).history] == [1, 2]


def test_lopsided_classes_train_with_class_weights_or_balanced_sampling(tmp_path):
    data = tmp_path / "lopsided"
    write_shapes_dataset(data, per_class=30, classes=("circles", "squares"))
    write_shapes_dataset(data, per_class=6, seed=5, classes=("triangles",))
    scan = scan_class_folders(data)
    assert scan.is_imbalanced
    for settings in ({"class_weights": True}, {"balanced_sampling": True}):
        result = train_run(create_run(TrainPlan(str(data), **TINY, **settings), scan).folder)
        assert result.evaluation.per_class[2].recall == 1.0


def test_full_options_heavy_augmentation_accumulation_and_progressive_unfreezing_run(shapes):
    folder = start(
        shapes, method="full", epochs=3, augmentation="heavy", grad_accumulation=2, progressive_unfreeze=True,
        eval_every=2,
    )
    steps = []
    result = train_run(folder, steps.append)
    step_events = [e for e in steps if isinstance(e, StepMetrics)]
    assert max(e.steps for e in step_events) == 2  # 72 training images, batches of 16 → 4 batches → 2 steps
    assert [h.epoch for h in result.history] == [2, 3]  # every 2nd epoch, and always the last


def test_training_can_start_from_a_saved_bundle(shapes, tmp_path):
    first = train_run(start(shapes, method="full", epochs=12))
    # The same classes: the model goes on learning with its own head, from where it was.
    again = train_run(start(shapes, method="quick", epochs=1, init=str(first.bundle)))
    assert again.evaluation.accuracy >= first.evaluation.accuracy - 0.06
    # Other classes: a fresh head on the trained backbone.
    two = write_shapes_dataset(tmp_path / "two", per_class=20, seed=3, classes=("circles", "triangles"))
    other = train_run(start(two, method="quick", init=str(first.bundle)))
    assert other.evaluation.labels == ("circles", "triangles") and other.evaluation.accuracy >= 0.9


def test_an_existing_folder_that_is_not_a_bundle_is_never_written_over(shapes, tmp_path):
    precious = tmp_path / "holiday photos"
    precious.mkdir()
    (precious / "beach.jpg").write_bytes(b"precious")
    with pytest.raises(UserFacingError, match="not a model bundle"):
        train_run(start(shapes, output=str(precious), epochs=1))
    assert [p.name for p in precious.iterdir()] == ["beach.jpg"]


def test_a_bad_setting_is_refused_with_the_setting_named(shapes):
    with pytest.raises(UserFacingError, match="batch size"):
        start(shapes, batch_size=0)
    with pytest.raises(UserFacingError, match="built-in weights"):
        train_run(start(shapes, arch="resnet18", init="builtin"))


def test_probabilities_of_the_saved_model_match_the_trainers_evaluation(shapes):
    """The bundle holds the best epoch's weights: classifying the validation images gives the reported accuracy."""
    result = train_run(start(shapes, method="quick", epochs=3))
    run = open_run(result.run_folder)
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(result.bundle))), device="cpu"))
    predicted = [r.top[0].label for r in classifier.classify_files([i.path for i in run.val])]
    truth = [run.classes[i.label] for i in run.val]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert accuracy == pytest.approx(result.evaluation.accuracy)


def test_the_optional_onnx_export_computes_what_the_bundle_computes(shapes, held_out):
    import onnxruntime

    from engine.decode import decode_image
    from engine.preprocess import Preprocessor

    result = train_run(start(shapes, method="quick", export_onnx=True))
    assert result.onnx == result.bundle / "model.onnx"
    loaded = load_model(ModelSpec(source=Bundle(str(result.bundle))), device="cpu")
    files = sorted(held_out.glob("*/*"))
    batch = Preprocessor(loaded.data_config).batch([decode_image(f) for f in files])
    session = onnxruntime.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": batch.numpy()})[0]
    with torch.no_grad():
        torch_logits = loaded.model(batch).numpy()
    assert np.array_equal(onnx_logits.argmax(1), torch_logits.argmax(1))
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def test_data_loader_worker_processes_load_the_images(shapes):
    """Spawned workers (safe beside Qt's threads and in the packaged app) feed training like the in-thread loader."""
    result = train_run(start(shapes, method="full", epochs=2, workers=1))
    assert [h.epoch for h in result.history] == [1, 2]


def test_the_time_left_follows_the_pace_of_the_epochs_after_the_first(monkeypatch):
    """The first epoch decodes every photo; later ones find them in memory. A folder of phone photos took 40 s for
    its first epoch and under 3 s for each later one, so from the second epoch on the time left is told at the
    later pace, not the whole run's average (almost 8 times too much at the second epoch's midpoint)."""
    from engine.training import trainer

    now = [1000.0]
    monkeypatch.setattr(trainer.time, "monotonic", lambda: now[0])
    steps_per_epoch, epochs = 4, 3
    clock = trainer._StepClock(steps_per_epoch, epochs, start_epoch=0, lr=1e-3, warmup_epochs=0)
    told: list[StepMetrics] = []
    report = clock.step_reporter(told.append)

    def run_epoch(epoch: int, step_seconds: float, steps: int = steps_per_epoch) -> None:
        clock.start_epoch(epoch)
        for step in range(1, steps + 1):
            now[0] += step_seconds
            report(step, loss=1.0, images=8)

    run_epoch(1, step_seconds=10.0)
    assert told[-1].eta_seconds == pytest.approx(10.0 * 8)  # only the first epoch's pace is known
    now[0] += 5.0  # evaluation
    run_epoch(2, step_seconds=1.0, steps=2)
    assert told[-1].eta_seconds == pytest.approx(1.0 * 6)
    assert told[-1].images_per_second == pytest.approx(8.0)

    resumed = trainer._StepClock(steps_per_epoch, epochs, start_epoch=2, lr=1e-3, warmup_epochs=0)
    told.clear()
    clock, report = resumed, resumed.step_reporter(told.append)
    run_epoch(3, step_seconds=10.0, steps=1)  # a resumed run's first epoch decodes every photo again
    assert told[-1].eta_seconds == pytest.approx(10.0 * 3)
