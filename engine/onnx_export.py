"""Exports a model to ONNX (batch size free), and proves the file computes what the PyTorch model computes.

A file that does not match is never kept: users run it elsewhere (ONNX Runtime, OpenCV DNN, phones) and trust it.
The pieces (graph writing, probe inputs, the agreement check) also serve engine/onnx_cache.py's runtime exports.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import torch

from engine.errors import UserFacingError
from engine.events import EventSink, Log, ignore_events
from engine.files import atomic_path
from engine.onnx_session import INPUT_NAME, OUTPUT_NAME, logits_disagreement, random_probe

OPSET = 18


def export_onnx(
    model: torch.nn.Module, input_size: tuple[int, int, int], target: str | Path, on_event: EventSink = ignore_events
) -> Path:
    """Write `model` to `target` as ONNX, atomically; raises UserFacingError if it cannot be exported or disagrees."""
    target = Path(target)
    model = float_cpu_model(model)
    probe = torch.from_numpy(random_probe(input_size))
    on_event(Log("info", f"Exporting ONNX to {target.name}"))
    with atomic_path(target) as tmp:
        write_onnx_graph(model, input_size, tmp)
        difference = _disagreement(model, tmp, probe)
        if difference is not None:
            raise UserFacingError(
                f"The ONNX export does not match the model ({difference}), so it was not saved.",
                "The model bundle itself is fine; use it in Classifier Studio.",
            )
    return target


def write_onnx_graph(model: torch.nn.Module, input_size: tuple[int, int, int], target: Path) -> None:
    """Write the unchecked ONNX graph of a float32 CPU model to `target`; UserFacingError when the exporter fails."""
    example = torch.from_numpy(random_probe(input_size))
    try:
        # The exporter reports each stage on stdout, prints failed graphs on stderr and warns about internals
        # users cannot act on.
        quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
        with quiet[0], quiet[1], warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(target), dynamo=True, verbose=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], external_data=False,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            )
    except Exception as exc:
        raise UserFacingError(
            f"This model cannot be exported to ONNX ({type(exc).__name__}).",
            "The model bundle itself is fine; use it in Classifier Studio, or try another architecture.",
        ) from exc


def float_cpu_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself when it is already float32 on the CPU, else a float32 CPU copy: the caller's stays as it is."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(t.device.type == "cpu" and (t.dtype == torch.float32 or not t.is_floating_point()) for t in tensors):
        return model.eval()
    return copy.deepcopy(model).float().cpu().eval()


def _disagreement(model: torch.nn.Module, onnx_file: Path, probe: torch.Tensor) -> str | None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(probe).numpy()
    return logits_disagreement(expected, session.run([OUTPUT_NAME], {INPUT_NAME: probe.numpy()})[0])
