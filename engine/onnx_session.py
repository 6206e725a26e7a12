"""ONNX Runtime sessions, and the numpy-only checks on what they compute.

No torch here (a test keeps it so): a model whose checked ONNX file is on disk classifies without torch, which
takes seconds to import (see engine/quick_start.py).
"""
from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime

PROBABILITY_TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass(frozen=True)
class Int8Agreement:
    """How closely the int8 model follows the full-precision one on the probe images."""

    top1: float  # share of probe images whose top class is the full-precision model's top class
    max_probability_difference: float
    probes: int
    calibrated: bool  # static quantization calibrated on the user's images; else dynamic (weights only)

    def describe(self) -> str:
        return (
            f"top-1 agrees with full precision on {self.top1 * 100:.0f} % of {self.probes} probe images "
            f"(probabilities within {self.max_probability_difference:.2f})"
        )


@dataclass(frozen=True)
class ClassEmbeddings:
    """A zero-shot model's last step, in numpy: logits = scale × the image's features · each class's embedding.

    The ONNX file then holds CLIP's image encoder alone, so one export serves every set of class names.
    """

    vectors: np.ndarray  # classes × features, float32, unit length
    scale: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        return (self.scale * (features @ self.vectors.T)).astype(np.float32, copy=False)

    @classmethod
    def from_dict(cls, record: dict) -> ClassEmbeddings:
        return cls(np.asarray(record["vectors"], dtype=np.float32), float(record["scale"]))

    def to_dict(self) -> dict:
        return {"vectors": self.vectors.tolist(), "scale": self.scale}


class OnnxRuntimeBackend:
    """A checked ONNX file of the model running in an ONNX Runtime session (and the class embeddings after it, for a
    zero-shot model)."""

    def __init__(
        self, session: onnxruntime.InferenceSession, name: str, onnx_file: Path, agreement: Int8Agreement | None = None,
        classes: ClassEmbeddings | None = None,
    ) -> None:
        self.session = session
        self.name = name
        self.onnx_file = onnx_file
        self.agreement = agreement
        self.classes = classes

    def logits(self, batch: np.ndarray) -> np.ndarray:
        output = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return output if self.classes is None else self.classes.logits(output)

    def for_live(self) -> OnnxRuntimeBackend:
        """A second session on the same checked file, on every core but with threads that sleep when idle.

        Spin-waiting threads starve the capture thread; leaving it a whole core instead halves inference on two
        cores. Measured with benchmarks/live.py's video, resnet50, 2 cores: one thread 9.6 FPS; two sleeping
        threads 15.2 FPS, capture and display still at the video's 30 fps.
        """
        session = onnxruntime_session(str(self.onnx_file), self.session.get_providers(), spin=False)
        return OnnxRuntimeBackend(session, self.name, self.onnx_file, self.agreement, self.classes)


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


def random_probe(input_size: tuple[int, ...], count: int = 2) -> np.ndarray:
    """The same seeded normal-noise batch every time, so checks are repeatable (and comparable across runs)."""
    return np.random.default_rng(0).standard_normal((count, *input_size), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def logits_disagreement(expected: np.ndarray, got: np.ndarray) -> str | None:
    """None when both give the same top-1 and probabilities within tolerance, else what differs."""
    expected, got = softmax(expected.astype(np.float32)), softmax(got.astype(np.float32))
    if expected.shape != got.shape:
        return f"outputs of shape {got.shape} instead of {expected.shape}"
    if not np.isfinite(got).all():
        return "outputs that are not numbers"
    if not np.array_equal(expected.argmax(1), got.argmax(1)):
        return "a different top class"
    worst = float(np.abs(expected - got).max())
    return f"probabilities differ by {worst:.1e}" if worst > PROBABILITY_TOLERANCE else None


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
