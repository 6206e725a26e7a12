"""Zero-shot CLIP's costs on this machine: building the classifier for N class names, and classifying an image
with PyTorch eager against ONNX Runtime (which runs CLIP's image encoder, exported once per CLIP model).

Weights are a seeded random init of the real architecture (speed does not depend on them; no network needed).

    python benchmarks/zero_shot.py [--model ViT-B-32] [--classes 2,10,100] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.models import load_model  # noqa: E402
from engine.runtime import create_backend, median_latency_ms  # noqa: E402
from engine.specs import ModelSpec, ZeroShot  # noqa: E402
from engine.zero_shot import new_clip  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="an open_clip model name")
    parser.add_argument("--classes", default="2,10,100", help="class counts to build the classifier for")
    parser.add_argument("--threads", type=int, default=0, help="torch's CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, CLIP {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / "clip.safetensors"
        save_file({k: v.contiguous() for k, v in new_clip(args.model).state_dict().items()}, str(weights))
        arch = f"clip/{args.model}"
        print(f"{'classes':>7} {'load (read + text encoder)':>26}")
        loaded = None
        for count in (int(n) for n in args.classes.split(",")):
            classes = tuple(f"class number {i}" for i in range(count))
            started = time.perf_counter()
            loaded = load_model(ModelSpec(arch, ZeroShot(classes, str(weights))), device="cpu")
            print(f"{count:7} {time.perf_counter() - started:24.2f} s", flush=True)

        batch1 = np.random.default_rng(0).standard_normal((1, *loaded.data_config.input_size)).astype(np.float32)
        batch8 = np.repeat(batch1, 8, axis=0)
        eager = create_backend(loaded, "pytorch")
        started = time.perf_counter()
        onnx = create_backend(loaded, "onnxruntime", cache_dir=tmp)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        create_backend(loaded, "onnxruntime", cache_dir=tmp)
        cached_s = time.perf_counter() - started
        print(f"ONNX Runtime: image encoder exported and checked in {export_s:.1f} s; from the cache {cached_s:.1f} s")
        print(f"{'':14} {'batch 1':>10} {'batch 8, per image':>19}")
        timings = {}
        for name, backend in (("PyTorch eager", eager), ("ONNX Runtime", onnx)):
            timings[name] = (median_latency_ms(backend, batch1, 20), median_latency_ms(backend, batch8, 5) / 8)
            print(f"{name:14} {timings[name][0]:8.1f} ms {timings[name][1]:16.1f} ms", flush=True)
        ratio = [o / e for o, e in zip(timings["ONNX Runtime"], timings["PyTorch eager"])]
        print(f"{'ratio':14} {ratio[0]:10.2f} {ratio[1]:19.2f}  (ONNX Runtime / eager)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
