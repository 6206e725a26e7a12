"""Inference backends behind one interface (PyTorch eager here; ONNX Runtime in fp32 or int8, whose sessions live in
engine/onnx_session.py) and the choice between them.

`create_backend` never fails for a model PyTorch can run: whatever keeps ONNX Runtime from running it becomes a
note in the log, and PyTorch runs it instead.
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, ignore_events
from engine.onnx_cache import (
    OnnxUnusable,
    cache_file,
    fp32_session,
    int8_file,
    int8_session,
    onnx_cache_dir,
)
from engine.onnx_export import float_cpu_model
from engine.onnx_session import Int8Agreement, OnnxRuntimeBackend, onnxruntime_session, random_probe
from engine.specs import BACKENDS, DeviceChoice, LoadedModel
from engine.zero_shot import ZeroShotClassifier

INT8_PROBES = 8  # noise images that measure int8's agreement when no calibration images are given
_GPU_PROVIDERS = {"CUDAExecutionProvider": "CUDA", "DmlExecutionProvider": "DirectML"}


class InferenceBackend(Protocol):
    name: str  # what the status bar shows: "PyTorch", "ONNX Runtime", "ONNX Runtime int8"
    agreement: Int8Agreement | None  # for int8: how closely it follows full precision; else None

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch in (the preprocessor's output), float32 (N, classes) logits out."""
        ...

    def for_live(self) -> InferenceBackend:
        """The same model tuned to share the CPU with live capture and display (see the implementations)."""
        ...


class PyTorchBackend:
    """The loaded model in eager mode, on its device and in its precision."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.name = "PyTorch"
        self.agreement: Int8Agreement | None = None
        self.model = loaded.model
        self.device = loaded.device
        self._channels_last = loaded.device.device == "cuda"
        if self._channels_last:
            # cuDNN's fastest convolutions (tensor cores in fp16/bf16) work on NHWC; the weights are converted once.
            self.model.to(memory_format=torch.channels_last)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch if batch.flags.writeable else batch.copy())  # torch wants writable memory
        with torch.inference_mode():
            tensor = tensor.to(device=self.device.device, dtype=self.device.dtype, non_blocking=True)
            if self._channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            return self.model(tensor).float().cpu().numpy()

    def for_live(self) -> PyTorchBackend:
        return self  # torch's threads are per process: the live pipeline leaves capture a core while it runs


def create_backend(
    loaded: LoadedModel,
    backend: str = "auto",
    int8: bool = False,
    calibration: Sequence[np.ndarray] = (),
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> InferenceBackend:
    """The backend that runs `loaded`: `backend` is one of BACKENDS; `auto` picks the fastest correct one.

    The first use of a model with ONNX Runtime exports it (seconds, with Progress/Log events) into `cache_dir`
    (default: the user's data folder); later uses load the cached file. `int8` adds quantization, calibrated on
    `calibration` (preprocessed CHW images) when given. `threads` caps ONNX Runtime's threads (default: one per
    physical core); PyTorch's process-wide thread count is left as it is.
    """
    if backend not in BACKENDS:
        raise UserFacingError(f"Unknown inference backend '{backend}'.", f"Choose one of: {', '.join(BACKENDS)}.")
    cancel = cancel or CancelToken()
    if not _wants_onnxruntime(loaded.device, backend, int8):
        if int8:
            on_event(Log("warning", "int8 runs in ONNX Runtime on the CPU; running the model in PyTorch instead."))
        return PyTorchBackend(loaded)
    folder = Path(cache_dir or onnx_cache_dir())
    try:
        return _onnxruntime_backend(loaded, int8, calibration, on_event, cancel, threads, folder)
    except (OnnxUnusable, UserFacingError) as exc:  # UserFacingError: the cache folder cannot be written
        on_event(Log("warning", f"ONNX Runtime is not used for {loaded.name}: {exc}. Running it in PyTorch."))
        return PyTorchBackend(loaded)


def _wants_onnxruntime(device: DeviceChoice, backend: str, int8: bool) -> bool:
    if backend != "auto":
        return backend == "onnxruntime"
    if device.device != "cpu":
        # On CUDA, PyTorch with fp16/bf16 and channels-last is as fast as ONNX Runtime's CUDA provider and needs no
        # onnxruntime-gpu package; for MPS ONNX Runtime has no provider at all.
        return False
    # On the CPU ONNX Runtime's fused kernels run fp32 models 1.6-3x faster than eager PyTorch. A user who chose
    # bf16 there asked for PyTorch's bf16 kernels (fast on AMX/AVX-512 CPUs), which ONNX Runtime does not have.
    return device.precision == "fp32" or int8


def _onnxruntime_backend(
    loaded: LoadedModel,
    int8: bool,
    calibration: Sequence[np.ndarray],
    on_event: EventSink,
    cancel: CancelToken,
    threads: int | None,
    cache_dir: Path,
) -> OnnxRuntimeBackend:
    input_size = loaded.data_config.input_size
    images = np.concatenate(
        [np.empty((0, *input_size), np.float32)]
        + [np.asarray(image, dtype=np.float32).reshape(-1, *input_size) for image in calibration]
    )
    reference = float_cpu_model(loaded.model)  # ONNX Runtime runs fp32: exported from and checked against fp32
    classes = None
    if isinstance(reference, ZeroShotClassifier):  # the image encoder is exported once, whatever the classes
        if int8:
            on_event(Log("warning", f"int8 is not offered for zero-shot models; {loaded.name} runs at full precision."))
            int8 = False
        classes, reference = reference.class_embeddings_array(), reference.features
    target = cache_file(cache_dir, loaded.arch, reference, input_size)
    probes = np.concatenate([images, random_probe(input_size)])
    make_session = partial(onnxruntime_session, providers=_providers(loaded.device, on_event), threads=threads)
    session = fp32_session(reference, input_size, target, probes, make_session, on_event, cancel)
    provider = _GPU_PROVIDERS.get(session.get_providers()[0])
    name = f"ONNX Runtime · {provider}" if provider else "ONNX Runtime"
    if not int8:
        return OnnxRuntimeBackend(session, name, target, classes=classes)
    cancel.check()
    quantized_file = int8_file(target, calibrated=len(images) > 0)
    noise = random_probe(input_size, INT8_PROBES)
    # int8 kernels are a CPU feature: the int8 session stays on the CPU whatever the device.
    cpu_session = partial(onnxruntime_session, threads=threads)
    try:
        quantized, agreement = int8_session(
            quantized_file, target, session, images, noise, cpu_session, on_event, cancel
        )
    except (OnnxUnusable, UserFacingError) as exc:
        on_event(Log("warning", f"int8 is not used for {loaded.name}: {exc}. Running it at full precision."))
        return OnnxRuntimeBackend(session, name, target)
    on_event(Log("info", f"int8 for {loaded.name}: {agreement.describe()}"))
    return OnnxRuntimeBackend(quantized, "ONNX Runtime int8", quantized_file, agreement)


def _providers(device: DeviceChoice, on_event: EventSink) -> list[str]:
    import onnxruntime

    if device.device != "cpu":
        available = onnxruntime.get_available_providers()
        wanted = ["CUDAExecutionProvider"] if device.device == "cuda" else []
        for provider in [*wanted, "DmlExecutionProvider"]:
            if provider in available:
                return [provider, "CPUExecutionProvider"]
        on_event(Log("info", f"ONNX Runtime here has no provider for {device.description}; it runs on the CPU."))
    return ["CPUExecutionProvider"]


def median_latency_ms(backend: InferenceBackend, batch: np.ndarray, repeats: int = 30, warmup: int = 3) -> float:
    """Median wall time of `backend.logits(batch)` in milliseconds, after a few warm-up runs (for benchmarks)."""
    for _ in range(warmup):
        backend.logits(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        backend.logits(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
