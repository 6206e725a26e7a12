"""Exports a model to ONNX (batch size free), and proves the file computes what the PyTorch model computes.

A file that does not match is never kept: users run it elsewhere (ONNX Runtime, OpenCV DNN, phones) and trust it.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from engine.errors import UserFacingError
from engine.events import EventSink, Log, ignore_events
from engine.files import atomic_path

OPSET = 18
PROBABILITY_TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(
    model: torch.nn.Module, input_size: tuple[int, int, int], target: str | Path, on_event: EventSink = ignore_events
) -> Path:
    """Write `model` to `target` as ONNX, atomically; raises UserFacingError if it cannot be exported or disagrees."""
    target = Path(target)
    model = model.eval().float().cpu()
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn((2, *input_size), generator=generator)
    on_event(Log("info", f"Exporting ONNX to {target.name}"))
    with atomic_path(target) as tmp:
        try:
            # The exporter reports each stage on stdout and warns about internals users cannot act on.
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model, (probe,), str(tmp), dynamo=True, verbose=False, opset_version=OPSET,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], external_data=False,
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                )
        except Exception as exc:
            raise UserFacingError(
                f"This model cannot be exported to ONNX ({type(exc).__name__}).",
                "The model bundle itself is fine; use it in Classifier Studio, or try another architecture.",
            ) from exc
        difference = _disagreement(model, tmp, probe)
        if difference is not None:
            raise UserFacingError(
                f"The ONNX export does not match the model ({difference}), so it was not saved.",
                "The model bundle itself is fine; use it in Classifier Studio.",
            )
    return target


def _disagreement(model: torch.nn.Module, onnx_file: Path, probe: torch.Tensor) -> str | None:
    """None when ONNX Runtime gives the same top-1 and probabilities within tolerance, else what differs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = torch.softmax(model(probe), dim=1).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: probe.numpy()})[0]
    got = np.exp(got - got.max(axis=1, keepdims=True))
    got /= got.sum(axis=1, keepdims=True)
    if not np.array_equal(expected.argmax(1), got.argmax(1)):
        return "a different top class"
    worst = float(np.abs(expected - got).max())
    return f"probabilities differ by {worst:.1e}" if worst > PROBABILITY_TOLERANCE else None
