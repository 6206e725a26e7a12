"""Quick start: a model ONNX Runtime ran before classifies again from its checked ONNX file, without torch, and
only while its weights, its ONNX file and the request are unchanged."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.decode import decode_image
from engine.events import Log
from engine.models import load_model
from engine.onnx_session import PROBABILITY_TOLERANCE, OnnxRuntimeBackend
from engine.predict import Classifier, calibration_images
from engine.preprocess import Preprocessor
from engine.quick_start import quick_classifier, quick_start_dir, remember
from engine.runtime import create_backend
from engine.specs import Bundle, InferenceChoice, ModelSpec, builtin_model_spec
from tests.conftest import make_bundle

REPO = Path(__file__).resolve().parents[2]
CPU = InferenceChoice("cpu")


def full_load(spec: ModelSpec, choice: InferenceChoice = CPU) -> Classifier:
    """What the window and the command line do without a quick start, remembering the model afterwards."""
    loaded = load_model(spec, choice.device, choice.precision)
    classifier = Classifier(loaded, create_backend(loaded, choice.backend, choice.int8))
    remember(spec, choice, classifier)
    return classifier


def probabilities(classifier: Classifier, photo_files: list[Path]) -> np.ndarray:
    images = [decode_image(path) for path in photo_files]
    return classifier.probabilities(classifier.preprocessor.batch_array(images))


def test_the_second_load_comes_from_the_checked_onnx_file_and_predicts_the_same(tiny_bundle, photo_files):
    spec = ModelSpec(source=Bundle(str(tiny_bundle)))
    assert quick_classifier(spec, CPU) is None  # never loaded: nothing to start from
    full = full_load(spec)
    assert isinstance(full.backend, OnnxRuntimeBackend)

    onnx_file = full.backend.onnx_file
    written = onnx_file.stat().st_mtime_ns
    os.utime(onnx_file, ns=(0, written))  # as if unused for years: the export cache would delete it first

    notes = []
    quick = quick_classifier(spec, CPU, notes.append)
    assert quick is not None, notes
    assert quick.loaded.model is None  # no PyTorch module was built
    # Marked as used for the export cache, by its access time: its modification time, which the record holds, stays.
    assert onnx_file.stat().st_atime_ns > 0 and onnx_file.stat().st_mtime_ns == written
    assert (quick.loaded.labels, quick.loaded.data_config, quick.loaded.name) == (
        full.loaded.labels, full.loaded.data_config, full.loaded.name)
    assert quick.backend.name == "ONNX Runtime" and quick.loaded.device.description == "CPU · fp32"
    expected, got = probabilities(full, photo_files), probabilities(quick, photo_files)
    assert np.array_equal(expected.argmax(1), got.argmax(1))
    assert np.abs(expected - got).max() <= PROBABILITY_TOLERANCE
    results = quick.classify_files(photo_files, topk=2)
    assert [r.error for r in results] == [None] * len(photo_files)


def test_a_quick_start_imports_neither_torch_nor_timm(tiny_bundle, photo_files):
    spec = ModelSpec(source=Bundle(str(tiny_bundle)))
    expected = full_load(spec).classify_files(photo_files[:1], topk=1)[0].top[0].label
    code = f"""
import sys
from engine.quick_start import quick_classifier
from engine.specs import Bundle, InferenceChoice, ModelSpec, builtin_model_spec
classifier = quick_classifier(ModelSpec(source=Bundle({str(tiny_bundle)!r})), InferenceChoice("cpu"))
result = classifier.classify_files([{str(photo_files[0])!r}], topk=1)[0]
print(result.top[0].label, "torch" in sys.modules, "timm" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "False", "False"]


def test_changed_weights_or_another_request_load_in_full(tmp_path, photo_files):
    bundle = make_bundle(tmp_path / "bundle", seed=0)
    spec = ModelSpec(source=Bundle(str(bundle)))
    full_load(spec)
    for other in (InferenceChoice("cpu", backend="pytorch"), InferenceChoice("cpu", int8=True),
                  InferenceChoice("cpu", precision="bf16"), InferenceChoice("cuda")):
        assert quick_classifier(spec, other) is None, other

    make_bundle(tmp_path / "bundle", seed=1)  # retrained in place: new weights at the same path
    notes = []
    assert quick_classifier(spec, CPU, notes.append) is None
    assert any("changed" in note.text for note in notes if isinstance(note, Log)), notes
    retrained = full_load(spec)
    quick = quick_classifier(spec, CPU)
    assert quick is not None and quick.backend.onnx_file == retrained.backend.onnx_file
    difference = np.abs(probabilities(quick, photo_files) - probabilities(retrained, photo_files)).max()
    assert difference <= PROBABILITY_TOLERANCE


def test_a_damaged_onnx_file_or_record_costs_only_the_quick_start(tiny_bundle):
    spec = ModelSpec(source=Bundle(str(tiny_bundle)))
    onnx_file = full_load(spec).backend.onnx_file
    record_file, = quick_start_dir().glob("*.json")

    # Same size and time, other bytes: only running it against PyTorch's probe logits can tell.
    stat = onnx_file.stat()
    original = onnx_file.read_bytes()
    onnx_file.write_bytes(b"\0" * len(original))
    os.utime(onnx_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    notes = []
    try:
        assert quick_classifier(spec, CPU, notes.append) is None
    finally:
        onnx_file.write_bytes(original)  # the ONNX cache is shared by the whole test run
        os.utime(onnx_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert any("No quick start" in note.text for note in notes), notes
    assert not record_file.exists()  # dropped, so that the next full load writes a good one
    full_load(spec)
    assert quick_classifier(spec, CPU) is not None

    record = json.loads(record_file.read_text(encoding="utf-8"))
    record["probe_logits"] = [  # a tampered record: PyTorch's top class moved to the next class
        [100.0 if i == (int(np.argmax(row)) + 1) % len(row) else 0.0 for i in range(len(row))]
        for row in record["probe_logits"]
    ]
    record_file.write_text(json.dumps(record), encoding="utf-8")
    assert quick_classifier(spec, CPU) is None
    assert not record_file.exists()  # dropped, so that the next full load writes a good one
    full_load(spec)
    assert quick_classifier(spec, CPU) is not None
    record_file.write_text("{ not json", encoding="utf-8")
    assert quick_classifier(spec, CPU) is None
    full_load(spec)  # a full load writes it afresh
    assert quick_classifier(spec, CPU) is not None


def test_a_record_that_cannot_be_written_costs_nothing_but_the_quick_start(tiny_bundle):
    spec = ModelSpec(source=Bundle(str(tiny_bundle)))
    quick_start_dir().parent.mkdir(parents=True, exist_ok=True)
    quick_start_dir().write_text("a file where the records' folder should be", encoding="utf-8")
    classifier = full_load(spec)  # remembers: the write fails quietly
    assert classifier.backend.name == "ONNX Runtime"
    assert quick_classifier(spec, CPU) is None


def test_an_int8_model_starts_quickly_with_its_agreement_and_only_for_the_same_calibration(photo_files):
    spec, int8 = builtin_model_spec(), InferenceChoice("cpu", int8=True)
    folders = (str(photo_files[0].parent),)  # as the window does: int8 calibrates on the recent folders' images
    loaded = load_model(spec, "cpu")
    calibration = calibration_images(folders, Preprocessor(loaded.data_config))
    full = Classifier(loaded, create_backend(loaded, int8=True, calibration=calibration))
    assert full.backend.name == "ONNX Runtime int8" and full.backend.agreement.calibrated
    remember(spec, int8, full, calibration_folders=folders)

    quick = quick_classifier(spec, int8, calibration_folders=folders)
    assert quick is not None and quick.loaded.model is None
    assert quick.backend.name == "ONNX Runtime int8" and quick.backend.onnx_file == full.backend.onnx_file
    assert quick.backend.agreement == full.backend.agreement  # shown again: "top-1 agrees with full precision on …"
    expected, got = probabilities(full, photo_files), probabilities(quick, photo_files)
    assert np.array_equal(expected.argmax(1), got.argmax(1))
    assert np.abs(expected - got).max() <= PROBABILITY_TOLERANCE
    # Other calibration folders (the full load would measure the agreement on other images), or full precision:
    assert quick_classifier(spec, int8, calibration_folders=()) is None
    assert quick_classifier(spec, CPU) is None
