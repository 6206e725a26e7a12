"""Classifier Studio's inference speed against a plain timm eager script, measured in the same run.

For each model: latency per image at batch 1 and throughput at batch 8, from JPEG files on disk
(decode + preprocess + predict), through our engine and through the plain script, and their ratio; then a
folder of FOLDER_SIZE photos through the engine's batch classification against the model alone on already
preprocessed batches (model-only throughput), and their ratio. `--camera` makes the photos 12-megapixel
camera JPEGs (4000x3000) instead of web-sized ones.
Both start from the same weights; the engine runs them on the backend `--backend` picks (auto: ONNX Runtime on
the CPU, exported once and cached; pytorch: the same nn.Module as the plain script).

    python benchmarks/inference.py [--models a,b] [--device cpu] [--precision fp32]
                                   [--backend auto|pytorch|onnxruntime] [--int8] [--camera]

On a GPU, `--device cuda --precision fp16` (or bf16) runs the engine in that precision against plain timm in
fp32 eager mode on the same device.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from timm.data import create_transform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.models import ModelSpec, RandomInit, load_model  # noqa: E402
from engine.predict import Classifier  # noqa: E402
from engine.runtime import create_backend  # noqa: E402
from engine.specs import BACKENDS, PRECISIONS  # noqa: E402

MODELS = [
    "mobilenetv3_small_100", "mobilenetv3_large_100", "efficientnet_b0", "resnet50", "convnext_tiny",
    "vit_small_patch16_224", "tf_efficientnet_lite0",
]


FOLDER_SIZE = 64
CAMERA_SIZE = (4000, 3000)


def write_photos(folder: Path, count: int, camera: bool = False) -> list[Path]:
    from skimage import data

    photos = [Image.fromarray(p) for p in (data.chelsea(), data.coffee(), data.astronaut(), data.rocket())]
    if camera:
        photos = [p.resize(CAMERA_SIZE, Image.Resampling.BICUBIC) for p in photos]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo{i}.jpg"
        if i < len(photos):
            photos[i].save(path, quality=92)
        else:  # the same few photos again, as links: a big folder at no encoding or disk cost
            path.hardlink_to(paths[i % len(photos)])
        paths.append(path)
    return paths


def median_seconds(run, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plain_timm(model: torch.nn.Module, transform, device: str):
    """What a user would write with timm alone: open, transform, forward, softmax, top-5."""

    @torch.inference_mode()
    def run(paths: list[Path]) -> None:
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths]).to(device)
        model(batch).softmax(-1).topk(5)

    return run


def bench_model(
    arch: str, paths: list[Path], device: str, precision: str, repeats: int, backend: str, int8: bool
) -> dict:
    torch.manual_seed(0)  # the same weights every run, so the ONNX export is cached after the first
    loaded = load_model(ModelSpec(arch, RandomInit()), device=device, precision=precision)
    started = time.perf_counter()
    runtime = create_backend(loaded, backend, int8)
    prepare_s = time.perf_counter() - started
    classifier = Classifier(loaded, runtime)
    config = loaded.data_config
    transform = create_transform(
        input_size=config.input_size, interpolation=config.interpolation, mean=config.mean, std=config.std,
        crop_pct=config.crop_pct, crop_mode=config.crop_mode,
    )
    torch.manual_seed(0)  # the plain script runs the same weights in fp32
    plain_model = loaded.model
    if precision != "fp32":
        plain_model = load_model(ModelSpec(arch, RandomInit()), device=device).model
    plain = plain_timm(plain_model, transform, loaded.device.device)
    one, eight = paths[:1], paths[:8]
    row = {"model": arch, "backend": runtime.name, "prepare_s": prepare_s}
    # Interleave the two paths so background load on the machine hits both alike.
    row["plain_b1_ms"] = median_seconds(lambda: plain(one), repeats) * 1000
    row["ours_b1_ms"] = median_seconds(lambda: classifier.classify_files(one, batch_size=1), repeats) * 1000
    row["plain_b8_ips"] = 8 / median_seconds(lambda: plain(eight), max(3, repeats // 4))
    row["ours_b8_ips"] = 8 / median_seconds(
        lambda: classifier.classify_files(eight, batch_size=8), max(3, repeats // 4)
    )
    return row


def bench_folder(arch: str, folder: list[Path], device: str, precision: str, backend: str, int8: bool) -> dict:
    """The engine's batch classification of a folder against the model alone on preprocessed batches of 8."""
    torch.manual_seed(0)
    loaded = load_model(ModelSpec(arch, RandomInit()), device=device, precision=precision)
    classifier = Classifier(loaded, create_backend(loaded, backend, int8))
    batch = classifier.preprocessor.batch_array([Image.open(p).convert("RGB") for p in folder[:8]])
    model_only = 8 / median_seconds(lambda: classifier.predict_batch(batch), 10)
    folder_s = median_seconds(lambda: classifier.classify_files(folder, batch_size=8), 3, warmup=1)
    model_only = max(model_only, 8 / median_seconds(lambda: classifier.predict_batch(batch), 10))  # before/after
    return {"model": arch, "folder_ips": len(folder) / folder_s, "model_only_ips": model_only}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--camera", action="store_true", help="12-megapixel photos instead of web-sized ones")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device} {args.precision}, "
          f"backend {args.backend}"
          f"{' int8' if args.int8 else ''}")
    header = (f"{'model':24} {'ours runs on':>17} {'prepare s':>9} {'plain b1 ms':>11} {'ours b1 ms':>10} {'ratio':>6} "
              f"{'plain b8 img/s':>14} {'ours b8 img/s':>13} {'ratio':>6}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp) / "eight", 8, args.camera)
        for arch in args.models.split(","):
            r = bench_model(arch, paths, args.device, args.precision, args.repeats, args.backend, args.int8)
            print(
                f"{r['model']:24} {r['backend']:>17} {r['prepare_s']:9.1f} {r['plain_b1_ms']:11.1f} "
                f"{r['ours_b1_ms']:10.1f} "
                f"{r['ours_b1_ms'] / r['plain_b1_ms']:6.2f} {r['plain_b8_ips']:14.1f} {r['ours_b8_ips']:13.1f} "
                f"{r['plain_b8_ips'] / r['ours_b8_ips']:6.2f}",
                flush=True,
            )
        print("ratio = ours / plain time (below 1.00: the engine is faster). prepare = choosing the backend, "
              "including a first ONNX export (cached afterwards). Goals on the CPU: <= 0.45 for "
              "MobileNet/EfficientNet, <= 0.8 for ResNet-50.")
        print(f"\nA folder of {FOLDER_SIZE} {'12-megapixel' if args.camera else 'web-sized'} JPEG photos:")
        print(f"{'model':24} {'folder img/s':>12} {'model-only img/s':>16} {'ratio':>6}")
        folder = write_photos(Path(tmp) / "folder", FOLDER_SIZE, args.camera)
        for arch in args.models.split(","):
            r = bench_folder(arch, folder, args.device, args.precision, args.backend, args.int8)
            print(f"{r['model']:24} {r['folder_ips']:12.1f} {r['model_only_ips']:16.1f} "
                  f"{r['folder_ips'] / r['model_only_ips']:6.2f}", flush=True)
        print("ratio = folder throughput (decode + preprocess + predict) / model-only throughput (goal: >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
