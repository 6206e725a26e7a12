"""Regenerate resources/catalog.json: parameters, MACs, input size and classes of every curated model.

Run after editing the curated table in engine/catalog.py:  python scripts/generate_catalog.py [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

# Run as a file, so Python put scripts/ on sys.path, not the repo root that holds engine/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import timm  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from engine.catalog import CURATED, TORCHVISION_PREFIX, CuratedModel, catalog_path  # noqa: E402

# What a builder returns: the randomly initialised model, its (H, W) input size, its head's classes.
Built = tuple[nn.Module, tuple[int, int], int]


def _build_timm(arch: str) -> Built:
    net = timm.create_model(arch, pretrained=False)
    cfg = net.pretrained_cfg  # the tagged checkpoint's config, so size/classes match its weights
    _, height, width = cfg["input_size"]
    return net, (height, width), cfg["num_classes"]


def _build_torchvision(arch: str) -> Built:
    name = arch.removeprefix(TORCHVISION_PREFIX)
    net = torchvision.models.get_model(name, weights=None)
    # The weights enum describes the pretrained checkpoint without downloading it.
    weights = torchvision.models.get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size
    return net, (crop[0], crop[-1]), len(weights.meta["categories"])


BUILDERS: dict[str, Callable[[str], Built]] = {
    "timm": _build_timm, "builtin": _build_timm, "torchvision": _build_torchvision,
}


def measure_on(model: CuratedModel, device: str) -> dict:
    """Build the model on `device` and count its parameters and the MACs of one forward pass."""
    # On "meta" no weights are allocated or initialised and no arithmetic runs, so even ViT-L takes
    # about a second; the FLOP counter only needs shapes.
    with torch.device(device):
        net, (height, width), num_classes = BUILDERS[model.source](model.arch)
    head = getattr(net, "num_classes", num_classes)
    if head != num_classes:
        raise ValueError(f"{model.arch}: model head has {head} classes, checkpoint config says {num_classes}")
    net.eval()
    params = sum(p.numel() for p in net.parameters())
    sample = torch.zeros(1, 3, height, width, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(sample)
    return {
        "params": int(params),
        "macs": int(counter.get_total_flops()) // 2,  # the counter counts a multiply-add as 2 FLOPs
        "input_size": [int(height), int(width)],
        "num_classes": int(num_classes),
    }


def measure(model: CuratedModel) -> dict:
    try:
        return measure_on(model, "meta")
    except Exception as exc:  # noqa: BLE001 - any meta-device failure just means "use real tensors"
        print(f"  {model.arch}: meta device failed ({type(exc).__name__}: {exc}); measuring on CPU")
        return measure_on(model, "cpu")


def generate() -> dict:
    # Attention through explicit matmuls, not fused SDPA kernels: the FLOP counter sees every matmul,
    # whatever SDPA backend a device would pick, so the counts don't depend on where this runs.
    timm.layers.set_fused_attn(False)
    models = {}
    for model in CURATED:
        started = time.perf_counter()
        numbers = measure(model)
        models[model.arch] = numbers
        print(
            f"{model.arch:52s} {numbers['params']:>13,d} params {numbers['macs'] / 1e9:8.3f} GMACs"
            f"  {time.perf_counter() - started:5.2f}s"
        )
    return {
        "generated_with": {
            "timm": timm.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
        },
        "models": models,
    }


def write_atomically(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + os.replace, so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the catalog is an ordinary, world-readable data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=catalog_path(), help="where to write (default: %(default)s)")
    parser.add_argument(
        "--check", action="store_true", help="don't write; exit 1 if the existing file's numbers differ"
    )
    args = parser.parse_args(argv)
    # The meta device does no arithmetic; one thread keeps any CPU fallback polite on shared machines.
    torch.set_num_threads(1)

    started = time.perf_counter()
    data = generate()
    elapsed = time.perf_counter() - started
    if args.check:
        existing = json.loads(args.output.read_text(encoding="utf-8")) if args.output.exists() else {}
        in_sync = existing.get("models") == data["models"]
        print(f"{args.output} is {'in sync' if in_sync else 'OUT OF DATE'} ({elapsed:.1f}s)")
        return 0 if in_sync else 1
    write_atomically(args.output, json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(data['models'])} models to {args.output} in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
