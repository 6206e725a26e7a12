"""Quick start: a model that ONNX Runtime ran before classifies again without torch or timm being imported.

Importing torch and timm takes seconds (about 6 s on a 2-core machine), which every start and every command-line
run would otherwise wait for. After a full load whose ONNX file passed its check against PyTorch
(engine.runtime), `remember` records what that load found: the files the weights came from (size and time),
the checked ONNX file, the labels and data config, and PyTorch's logits on a seeded probe. The next identical
request gets its Classifier from `quick_classifier`: only if the request, the versions and every file are
unchanged, and the ONNX file still computes PyTorch's logits on the probe (the same check as a fresh export:
top-1 equal, probabilities within 1e-4). Otherwise it returns None and the caller loads the model in full.

An int8 model is remembered the same way, with two differences: its probe logits are its own (int8 is not meant to
equal PyTorch; its agreement with full precision, measured by the full load on the user's calibration images, is
recorded and shown again), and the calibration folders are part of the request.

No torch here, except in `remember`, which runs after a full load.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.events import EventSink, Log, ignore_events
from engine.files import key_digest, mark_used, write_text_atomically
from engine.onnx_session import (
    ClassEmbeddings,
    Int8Agreement,
    OnnxRuntimeBackend,
    logits_disagreement,
    onnxruntime_session,
    random_probe,
)
from engine.paths import package_version, user_data_dir
from engine.specs import DataConfig, DeviceChoice, InferenceChoice, LoadedModel, ModelSpec

if TYPE_CHECKING:
    from engine.predict import Classifier

FORMAT = 2  # 2: int8 records
_NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", r"C:\Windows\System32\nvcuda.dll")


def quick_start_dir() -> Path:
    return user_data_dir() / "quick-start"


def quick_classifier(
    spec: ModelSpec,
    choice: InferenceChoice,
    on_event: EventSink = ignore_events,
    folder: Path | None = None,
    calibration_folders: tuple[str, ...] = (),
) -> Classifier | None:
    """The remembered model for this request, checked and ready, or None when it must be loaded in full.

    `calibration_folders`: for int8, where the full load would find its calibration images (see remember).
    """
    key = _request_key(spec, choice, calibration_folders)
    if key is None:
        return None
    path = (folder or quick_start_dir()) / f"{key_digest(key)}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        on_event(Log("info", f"Quick start record {path.name} is unreadable ({exc}); loading in full."))
        return None
    try:
        why_not = _why_stale(record, key)
        if why_not is None:
            return _classifier(record, on_event)
    except Exception as exc:  # noqa: BLE001 - a damaged record or ONNX file only costs the quick start
        why_not = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)  # the next full load writes a good one
    on_event(Log("info", f"No quick start for {spec.arch or Path(getattr(spec.source, 'path', '')).name}: {why_not}."))
    return None


def remember(
    spec: ModelSpec,
    choice: InferenceChoice,
    classifier: Classifier,
    folder: Path | None = None,
    calibration_folders: tuple[str, ...] = (),
) -> None:
    """Record a fully loaded classifier for quick starts, when it runs an ONNX file on the CPU (fp32: imports torch).

    `calibration_folders`: those the full load calibrated int8 on. A record that already matches is left alone.
    The record only saves time: whatever stops it (a full disk, a read-only folder) costs the next start a few
    seconds, no more, and is never the user's problem.
    """
    loaded, backend = classifier.loaded, classifier.backend
    key = _request_key(spec, choice, calibration_folders)
    usable = (
        key is not None and isinstance(backend, OnnxRuntimeBackend)
        and (backend.agreement is not None) == choice.int8  # int8 asked for and in use, or neither
        and backend.session.get_providers()[0] == "CPUExecutionProvider" and loaded.device.device == "cpu"
        and loaded.model is not None and loaded.weights_files
    )
    if not usable:
        return
    path = (folder or quick_start_dir()) / f"{key_digest(key)}.json"
    try:
        if _why_stale(json.loads(path.read_text(encoding="utf-8")), key) is None:
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or damaged: write it
    try:
        write_text_atomically(path, json.dumps(_record(key, classifier)))
    except Exception:  # noqa: BLE001 - see the docstring
        pass


def _record(key: dict, classifier: Classifier) -> dict:
    loaded, backend = classifier.loaded, classifier.backend
    probe = random_probe(loaded.data_config.input_size)
    if backend.agreement is not None:
        expected = backend.logits(probe)  # int8's own: what this very file computed when it was checked
    else:
        import torch

        from engine.onnx_export import float_cpu_model

        with torch.inference_mode():
            expected = float_cpu_model(loaded.model)(torch.from_numpy(probe)).numpy()
    return {
        "format": FORMAT,
        "key": key,
        "files": [_fingerprint(file) for file in (*loaded.weights_files, str(backend.onnx_file))],
        "onnx_file": str(backend.onnx_file),
        "backend": backend.name,
        "arch": loaded.arch,
        "name": loaded.name,
        "source": loaded.source,
        "device": loaded.device.description,
        "labels": list(loaded.labels),
        "data_config": loaded.data_config.to_dict(),
        "probe_logits": expected.tolist(),
        "int8_agreement": dataclasses.asdict(backend.agreement) if backend.agreement else None,
        "class_embeddings": backend.classes.to_dict() if backend.classes else None,
    }


def _classifier(record: dict, on_event: EventSink) -> Classifier:
    from engine.predict import Classifier

    data_config = DataConfig.from_dict(record["data_config"])
    session = onnxruntime_session(record["onnx_file"])
    agreement = Int8Agreement(**record["int8_agreement"]) if record["int8_agreement"] else None
    classes = ClassEmbeddings.from_dict(record["class_embeddings"]) if record.get("class_embeddings") else None
    backend = OnnxRuntimeBackend(session, record["backend"], Path(record["onnx_file"]), agreement, classes)
    expected = np.asarray(record["probe_logits"], dtype=np.float32)
    difference = logits_disagreement(expected, backend.logits(random_probe(data_config.input_size)))
    if difference is not None:
        raise ValueError(f"the ONNX file no longer computes what it did when it was checked ({difference})")
    loaded = LoadedModel(
        model=None, arch=record["arch"], labels=tuple(record["labels"]), data_config=data_config,
        device=DeviceChoice("cpu", "fp32", record["device"]), name=record["name"], source=record["source"],
        weights_files=tuple(entry[0] for entry in record["files"][:-1]),
    )
    mark_used(record["onnx_file"])  # the export cache keeps what is used
    on_event(Log("info", f"Quick start: {loaded.name} from its checked ONNX file, without loading PyTorch"))
    return Classifier(loaded, backend)


def _why_stale(record: dict, key: dict) -> str | None:
    if record.get("format") != FORMAT or record.get("key") != key:
        return "the record is for another request or version"
    for path, size, mtime_ns in record["files"]:
        if _fingerprint(path) != [path, size, mtime_ns]:
            return f"{Path(path).name} changed"
    return None


def _request_key(spec: ModelSpec, choice: InferenceChoice, calibration_folders: tuple[str, ...]) -> dict | None:
    """What decides the model a full load would give, as plain values; None for requests with no quick start."""
    if choice.precision != "fp32" or choice.backend == "pytorch" or choice.device not in ("auto", "cpu"):
        return None
    if choice.device == "auto" and any(os.path.exists(f) for f in _NVIDIA_DRIVER_FILES):
        return None  # auto may pick a GPU here: only a full load (with torch) can tell
    source = spec.source
    path = getattr(source, "path", None)
    return {
        "arch": spec.arch,
        "source": type(source).__name__,
        "path": os.path.abspath(path) if path else None,
        "classes": list(getattr(source, "classes", ())),  # zero-shot: other classes or sentence, another model
        "prompt": getattr(source, "prompt", None),
        "choice": [choice.device, choice.precision, choice.backend, choice.int8],
        "calibration": [os.path.abspath(f) for f in calibration_folders] if choice.int8 else [],
        "versions": {name: package_version(name) for name in ("classifier-studio", "timm", "torch", "onnxruntime")},
        "python": sys.version.split()[0],
    }


def _fingerprint(path: str) -> list:
    try:
        stat = os.stat(path)
    except OSError:
        return [path, -1, -1]
    return [path, stat.st_size, stat.st_mtime_ns]


