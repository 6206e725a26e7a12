"""Inference backends behind one interface (PyTorch eager; ONNX Runtime in fp32 or int8) and the choice between them.

`create_backend` never fails for a model PyTorch can run: whatever keeps ONNX Runtime from running it becomes a
note in the log, and PyTorch runs it instead.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from engine.devices import DeviceChoice
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, ignore_events
from engine.models import LoadedModel
from engine.onnx_cache import (
    Int8Agreement,
    OnnxUnusable,
    cache_file,
    fp32_session,
    int8_file,
    int8_session,
    onnx_cache_dir,
)
from engine.onnx_export import INPUT_NAME, OUTPUT_NAME, float_cpu_model, random_probe
from engine.specs import BACKENDS

if TYPE_CHECKING:
    import onnxruntime

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


class OnnxRuntimeBackend:
    """A checked ONNX file of the model running in an ONNX Runtime session."""

    def __init__(
        self, session: onnxruntime.InferenceSession, name: str, onnx_file: Path, agreement: Int8Agreement | None = None
    ) -> None:
        self.session = session
        self.name = name
        self.onnx_file = onnx_file
        self.agreement = agreement

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def for_live(self) -> OnnxRuntimeBackend:
        """A second session on the same checked file, on every core but with threads that sleep when idle.

        Spin-waiting threads starve the capture thread; leaving it a whole core instead halves inference on two
        cores. Measured with benchmarks/live.py's video, resnet50, 2 cores: one thread 9.6 FPS; two sleeping
        threads 15.2 FPS, capture and display still at the video's 30 fps.
        """
        session = onnxruntime_session(str(self.onnx_file), self.session.get_providers(), spin=False)
        return OnnxRuntimeBackend(session, self.name, self.onnx_file, self.agreement)


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
    target = cache_file(cache_dir, loaded.arch, reference, input_size)
    probes = np.concatenate([images, random_probe(input_size).numpy()])
    make_session = partial(onnxruntime_session, providers=_providers(loaded.device, on_event), threads=threads)
    session = fp32_session(reference, input_size, target, probes, make_session, on_event, cancel)
    provider = _GPU_PROVIDERS.get(session.get_providers()[0])
    name = f"ONNX Runtime · {provider}" if provider else "ONNX Runtime"
    if not int8:
        return OnnxRuntimeBackend(session, name, target)
    cancel.check()
    quantized_file = int8_file(target, calibrated=len(images) > 0)
    noise = random_probe(input_size, INT8_PROBES).numpy()
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


def onnxruntime_session(
    model: bytes | str,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    threads: int | None = None,
    spin: bool = True,
) -> onnxruntime.InferenceSession:
    """A session with every graph optimisation on and one intra-op thread per physical core unless `threads` says.

    `spin` lets idle threads busy-wait for the next operator: fastest alone, but it takes CPU from other threads.
    Either way they stop spinning when a run ends, which leaves the CPU to the threads preparing the next batch
    (a folder of photos on 2 cores: mobilenetv3_large_100 125 → 137 img/s, the same batch-1 latency).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1  # classifiers are one chain of operators: parallelism is inside each one
    options.log_severity_level = 3  # errors only: its warnings (unused initializers, ...) are not for users
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(model, sess_options=options, providers=list(providers))


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


def physical_cores() -> int:
    """Cores this process may use, hyperthread siblings not counted: the best thread count for inference kernels.

    Linux counts distinct (physical id, core id) pairs in /proc/cpuinfo. Elsewhere, ARM CPUs (Apple silicon,
    Snapdragon) have no SMT and count as they are, and x86 CPUs are taken to run two threads per core.
    """
    logical = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    cores = _linux_physical_cores() if sys.platform.startswith("linux") else None
    if cores is None:
        cores = logical if platform.machine().lower() in ("arm64", "aarch64") else logical // 2
    return max(1, min(cores, usable))


def _linux_physical_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None  # ARM Linux has no "core id" lines: count as the caller decides


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
