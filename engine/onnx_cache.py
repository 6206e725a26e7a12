"""ONNX files for ONNX Runtime, exported (and, if asked, quantized to int8) once per model and kept on disk.

A file is used only after it passes its check against PyTorch; a cached file that fails it (truncated, garbage,
stale) is rebuilt. The folder stays within CACHE_BUDGET_BYTES: a new file makes room by deleting those used least
recently (files of old versions, models tried once), which are exported again if they are ever used again.
Anything that makes ONNX Runtime unusable for a model raises OnnxUnusable, whose message is the note for the log:
the caller then runs the model in PyTorch.
"""
from __future__ import annotations

import contextlib
import io
import re
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, Progress
from engine.files import atomic_path, delete_least_recently_used, key_digest, mark_used, write_text_atomically
from engine.onnx_export import OPSET, write_onnx_graph
from engine.onnx_session import INPUT_NAME, OUTPUT_NAME, Int8Agreement, logits_disagreement, softmax
from engine.paths import package_version, user_data_dir
from engine.weights import weights_digest

if TYPE_CHECKING:
    import onnxruntime

CACHE_FOLDER = "onnx-cache"
CACHE_BUDGET_BYTES = 4 * 1024**3  # a few large models' exports, or dozens of small ones
LEFTOVER_AGE_S = 24 * 3600  # a temporary file this old was left by a process that was killed mid-export
INT8_MIN_AGREEMENT = 0.8  # below this share of probes with the fp32 top-1, int8 is not worth its speed
SessionFactory = Callable[[bytes], "onnxruntime.InferenceSession"]
Checked = TypeVar("Checked")


class OnnxUnusable(Exception):
    """ONNX Runtime cannot run this model as well as PyTorch does; the message says why, for the log."""


def onnx_cache_dir() -> Path:
    return user_data_dir() / CACHE_FOLDER


def cache_file(cache_dir: Path, arch: str, model: torch.nn.Module, input_size: tuple[int, int, int]) -> Path:
    """Where the fp32 export of these very weights lives: any change of model, size or tool versions gives a new name.

    int8 files sit beside it, named after it, so they inherit the whole key.
    """
    import onnxruntime  # its module's version: the package may be onnxruntime, onnxruntime-gpu, -directml, ...

    key = {
        "arch": arch,
        "weights": weights_digest(model),
        "input_size": list(input_size),
        "opset": OPSET,
        "versions": {name: package_version(name) for name in ("onnx", "onnxscript", "timm", "open_clip_torch")},
        "runtimes": [torch.__version__, onnxruntime.__version__],
        "classifier-studio": package_version("classifier-studio"),
    }
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", arch)[:60] or "model"
    return cache_dir / f"{readable}-{key_digest(key)}.onnx"


def fp32_session(
    reference: torch.nn.Module,
    input_size: tuple[int, int, int],
    target: Path,
    probes: np.ndarray,
    make_session: SessionFactory,
    on_event: EventSink,
    cancel: CancelToken,
) -> onnxruntime.InferenceSession:
    """A session for `target`, exported from the float32 CPU `reference` unless a cached file passes the check."""
    failed_marker = target.with_suffix(".failed")
    if failed_marker.exists() and not target.exists():
        # The exporter's verdict for these weights and tool versions, kept so later starts do not retry in vain.
        raise OnnxUnusable(failed_marker.read_text(encoding="utf-8", errors="replace"))
    with torch.inference_mode():
        expected = reference(torch.from_numpy(probes)).float().numpy()

    def check(path: Path) -> onnxruntime.InferenceSession:
        session = _load(make_session, path)
        difference = logits_disagreement(expected, _run(session, probes))
        if difference is not None:
            raise OnnxUnusable(f"its answers differ from PyTorch's ({difference})")
        return session

    def build(path: Path) -> None:
        try:
            write_onnx_graph(reference, input_size, path)
        except UserFacingError as exc:
            raise OnnxUnusable(f"the ONNX exporter cannot handle it ({_summary(exc)})") from exc

    try:
        step = "Preparing the model for fast inference, once"
        return _cached_or_built(target, build, check, step, on_event, cancel)
    except OnnxUnusable as exc:
        with contextlib.suppress(UserFacingError):  # a read-only cache folder only means trying again next time
            write_text_atomically(failed_marker, str(exc))
        raise


def int8_file(fp32_file: Path, calibrated: bool) -> Path:
    """The int8 model beside its fp32 export, named after it. Calibration images are not part of the key: any few
    images calibrate about equally well, and the agreement is measured on the current ones each time anyway."""
    return fp32_file.with_name(f"{fp32_file.stem}-int8-{'static' if calibrated else 'dynamic'}.onnx")


def int8_session(
    target: Path,
    fp32_file: Path,
    fp32: onnxruntime.InferenceSession,
    calibration: np.ndarray,
    probes: np.ndarray,
    make_session: SessionFactory,
    on_event: EventSink,
    cancel: CancelToken,
) -> tuple[onnxruntime.InferenceSession, Int8Agreement]:
    """The int8 model in `target`, quantized from `fp32_file`: static QDQ calibrated on `calibration`, else dynamic.

    Its agreement with fp32 is measured on the calibration images (else on `probes`) every time it is used;
    below INT8_MIN_AGREEMENT it raises OnnxUnusable.
    """
    calibrated = len(calibration) > 0
    inputs = calibration if calibrated else probes
    expected = softmax(_run(fp32, inputs))

    def check(path: Path) -> tuple[onnxruntime.InferenceSession, Int8Agreement]:
        session = _load(make_session, path)
        got = softmax(_run(session, inputs))
        if not np.isfinite(got).all():
            raise OnnxUnusable("the int8 model gives outputs that are not numbers")
        agreement = Int8Agreement(
            float(np.mean(expected.argmax(1) == got.argmax(1))), float(np.abs(expected - got).max()), len(inputs),
            calibrated,
        )
        if agreement.top1 < INT8_MIN_AGREEMENT:
            raise OnnxUnusable(f"int8 changes the answers too much: {agreement.describe()}")
        return session, agreement

    quantize = partial(_quantize, fp32_file, calibration=calibration)
    return _cached_or_built(target, quantize, check, "Quantizing the model to int8, once", on_event, cancel)


def _cached_or_built(
    target: Path,
    build: Callable[[Path], None],
    check: Callable[[Path], Checked],
    step: str,
    on_event: EventSink,
    cancel: CancelToken,
) -> Checked:
    """The checked cached file, else a fresh one: built into a temporary file, checked, then renamed into place."""
    if target.exists():
        try:
            checked = check(target)
            mark_used(target)
            return checked
        except OnnxUnusable as exc:
            on_event(Log("info", f"The cached file {target.name} failed its check ({exc}); making it again."))
            target.unlink(missing_ok=True)
    cancel.check()
    on_event(Log("info", f"{step}; the result is kept in {target.parent}"))
    on_event(Progress(step, 0, 0, "steps"))
    try:
        with atomic_path(target) as tmp:
            build(tmp)
            cancel.check()
            checked = check(tmp)
    finally:
        on_event(Progress(step, 1, 1, "steps"))  # done, whichever way: the GUI's busy indicator stops
    mark_used(target)
    _stay_within_budget(target, on_event)
    return checked


def _stay_within_budget(new_file: Path, on_event: EventSink) -> None:
    """Make room for `new_file` by deleting the exports used least recently, and leftovers of killed exports."""
    folder = new_file.parent
    deleted = delete_least_recently_used(folder.glob("*.onnx"), CACHE_BUDGET_BYTES, keep={new_file})
    for leftover in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > LEFTOVER_AGE_S:
                leftover.unlink()
                deleted.append(leftover)
    if deleted:
        names = ", ".join(path.name for path in deleted)
        on_event(Log("info", f"Deleted from the ONNX cache, to keep it within {CACHE_BUDGET_BYTES / 1024**3:.0f} GB: "
                             f"{names}"))


def _quantize(fp32_file: Path, target: Path, *, calibration: np.ndarray) -> None:
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:  # e.g. a packaged app built without them: full precision still works
        raise OnnxUnusable(f"this installation lacks ONNX Runtime's quantization tools ({_summary(exc)})") from exc

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter([{INPUT_NAME: image[None]} for image in calibration])

        def get_next(self) -> dict | None:
            return next(self._feeds, None)

    # The quantizer prints progress and logs advice to stderr, none of it for users.
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = Path(scratch) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32_file), str(source))  # shape inference + fusions ONNX Runtime recommends
        except Exception:  # noqa: BLE001 - optional: some graphs defeat its shape inference; quantize them as they are
            source = fp32_file
        try:
            if len(calibration):
                # reduce_range (7-bit weights) avoids the u8×s8 overflow of AVX2/AVX-512 CPUs without VNNI, which
                # otherwise flips top-1 answers; on VNNI CPUs it costs a hardly measurable bit of accuracy.
                quantize_static(
                    str(source), str(target), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                )
            else:
                # Without images to calibrate activations, only weight-heavy matrix products are quantized: that
                # is where dynamic quantization pays (transformers, classifier heads); its ConvInteger is slow.
                quantize_dynamic(
                    str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
                )
        except Exception as exc:
            raise OnnxUnusable(f"ONNX Runtime cannot quantize it ({_summary(exc)})") from exc


def _load(make_session: SessionFactory, path: Path) -> onnxruntime.InferenceSession:
    try:
        return make_session(path.read_bytes())
    except Exception as exc:  # ONNX Runtime raises its own types (InvalidProtobuf, Fail, ...) for damaged files
        raise OnnxUnusable(f"ONNX Runtime cannot load it: {type(exc).__name__}") from exc


def _run(session: onnxruntime.InferenceSession, batch: np.ndarray) -> np.ndarray:
    try:
        return session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
    except Exception as exc:  # a file for another input size or output name fails here rather than at load
        raise OnnxUnusable(f"ONNX Runtime cannot run it: {type(exc).__name__}") from exc


def _summary(exc: BaseException) -> str:
    """The root cause's type and first line, without the terminal colours torch's exporter puts in, for the log."""
    while exc.__cause__ is not None:  # the exporter wraps the real reason in generic "step 1/3 failed" errors
        exc = exc.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    first = lines[0][:200] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
