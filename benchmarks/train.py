"""Classifier Studio's training speed: (a) a full fine-tune epoch against a plain timm/PyTorch loop in the same run,
(b) the Quick method from scan to saved bundle, split into its phases, (c) a phone's 12-megapixel photo, as JPEG
and as PNG (which, like HEIC, has no reduced-scale decoding), through each augmentation preset: decoded in full, as
a plain loop does, against our loader from the second epoch on.

Both use generated class folders (coloured shapes, as in the tests) and random weights, so no network is needed.

    python benchmarks/train.py [--model mobilenetv3_large_100] [--images 256] [--quick-images 500]
                               [--batch-size 32] [--image-size 224] [--threads N] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.decode import decode_image
from engine.events import Log, Progress
from engine.paths import DATA_DIR_ENV
from engine.specs import DataConfig
from engine.training.data import AUGMENTATION_PRESETS, LabeledImageDataset, train_transform
from engine.training.dataset import LabeledImage, scan_class_folders
from engine.training.plan import EpochMetrics, StepMetrics, TrainPlan
from engine.training.run import create_run
from engine.training.trainer import train_run
from tests.training.shapes import SHAPE_CLASSES, shape_image

AUGMENTATION = "light"  # the product's default preset


def write_images(root: Path, count: int, size: int, seed: int = 0) -> Path:
    """`count` shape images in class folders, JPEG and PNG mixed, `size` px square."""
    rng = np.random.default_rng(seed)
    classes = list(SHAPE_CLASSES)
    for index in range(count):
        kind = classes[index % len(classes)]
        (root / kind).mkdir(parents=True, exist_ok=True)
        shape_image(kind, rng, size).save(root / kind / f"{index:04d}{'.png' if index % 3 == 0 else '.jpg'}")
    return root


def new_run(data: Path, args: argparse.Namespace, method: str, output: Path):
    plan = TrainPlan(
        str(data), arch=args.model, init="scratch", method=method, epochs=1 if method == "full" else 0,
        batch_size=args.batch_size, image_size=args.image_size, augmentation=AUGMENTATION, device=args.device,
        output=str(output),
    )
    return create_run(plan, scan_class_folders(data))


def ours_full_epoch(data: Path, args: argparse.Namespace, output: Path) -> tuple[float, int, tuple[LabeledImage, ...]]:
    """Seconds and images of one full fine-tune epoch through train_run (its training steps only)."""
    run = new_run(data, args, "full", output)
    steps: list[StepMetrics] = []
    train_run(run.folder, lambda e: steps.append(e) if isinstance(e, StepMetrics) else None)
    last = steps[-1]  # always sent for the epoch's last step; images/s covers the whole epoch so far
    images = (len(run.train) // args.batch_size) * args.batch_size  # the loader drops a last partial batch
    return images / last.images_per_second, images, run.train


class PlainFolder(torch.utils.data.Dataset):
    """What an ImageFolder does: open, convert to RGB, transform."""

    def __init__(self, items: tuple[LabeledImage, ...], transform) -> None:
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        return self.transform(Image.open(item.path).convert("RGB")), item.label


def plain_full_epoch(items: tuple[LabeledImage, ...], args: argparse.Namespace) -> tuple[float, int]:
    """One epoch of a textbook timm loop on the same images, model, batch size, size and augmentation."""
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=len(SHAPE_CLASSES)).to(args.device).train()
    config = resolve_data_config({}, model=model)
    transform = create_transform((3, args.image_size, args.image_size), is_training=True,
                                 interpolation=config["interpolation"], mean=config["mean"], std=config["std"],
                                 **AUGMENTATION_PRESETS[AUGMENTATION])
    loader = torch.utils.data.DataLoader(PlainFolder(items, transform), batch_size=args.batch_size, shuffle=True,
                                         drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    started, images = time.perf_counter(), 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(args.device), targets.to(args.device)
        loss = criterion(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        images += len(targets)
    if args.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, images


def quick_phases(data: Path, args: argparse.Namespace, output: Path) -> tuple[dict[str, float], int]:
    """Seconds per phase of the Quick method, from the scan to the saved bundle, and the epochs it ran."""
    marks: list[tuple[str, float]] = []

    def on_event(event) -> None:
        now = time.perf_counter()
        if isinstance(event, Progress) and event.what == "Computing features":
            marks.append(("features", now))
        elif isinstance(event, EpochMetrics):
            marks.append(("epoch", now))
        elif isinstance(event, Log) and not any(kind == "features" for kind, _ in marks):
            marks.append(("model", now))  # the last one before the features: the backbone is built

    started = time.perf_counter()
    scan = scan_class_folders(data)
    scanned = time.perf_counter()
    plan = TrainPlan(str(data), arch=args.model, init="scratch", method="quick", batch_size=args.batch_size,
                     image_size=args.image_size, augmentation=AUGMENTATION, device=args.device, output=str(output))
    run = create_run(plan, scan)
    result = train_run(run.folder, on_event)
    finished = time.perf_counter()
    last = {kind: moment for kind, moment in marks}
    phases = {
        "scan + split": scanned - started,
        "build the model": last["model"] - scanned,
        "feature extraction": last["features"] - last["model"],
        "head training (all epochs)": last["epoch"] - last["features"],
        "final evaluation + save": finished - last["epoch"],
    }
    return phases, result.epochs_run


def phone_photo(folder: Path) -> tuple[Path, Path]:
    """A real photo at a phone camera's 4032 x 3024, with sensor-like noise so the files hold as much as one's."""
    from skimage import data

    rng = np.random.default_rng(0)
    enlarged = np.asarray(Image.fromarray(data.chelsea()).resize((4032, 3024), Image.Resampling.BICUBIC))
    noisy = Image.fromarray(np.clip(enlarged + rng.normal(0, 6, enlarged.shape), 0, 255).astype(np.uint8))
    noisy.save(folder / "IMG_0001.jpg", quality=92)
    noisy.save(folder / "IMG_0001.png", compress_level=1)
    return folder / "IMG_0001.jpg", folder / "IMG_0001.png"


def fastest_ms(read, repeats: int = 10) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        read()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def photo_rows(photo: Path, image_size: int) -> None:
    """Per preset: ms to decode and augment the photo in full, and through our dataset after its first epoch."""
    for preset in AUGMENTATION_PRESETS:
        transform = train_transform(DataConfig((3, image_size, image_size), "bicubic"), preset)
        dataset = LabeledImageDataset([LabeledImage(str(photo), 0)], transform, keep_large=True)
        dataset[0]  # the first epoch
        full_ms = fastest_ms(lambda: transform(decode_image(photo)))
        ours_ms = fastest_ms(lambda: dataset[0])
        kept = dataset.kept.get(str(photo))
        width, height = decode_image(kept).size if kept else decode_image(photo, transform.decode_size).size
        print(f"  {photo.suffix[1:].upper():5} {preset:9} {full_ms:9.0f} ms {ours_ms:6.0f} ms "
              f"{width:5d}x{height:<5d} {ours_ms / full_ms:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mobilenetv3_large_100")
    parser.add_argument("--images", type=int, default=256, help="images for the full fine-tune epoch (a)")
    parser.add_argument("--quick-images", type=int, default=500, help="images for the Quick method (b)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--source-size", type=int, default=256, help="pixel size of the generated image files")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="epochs of each loop in (a); the fastest counts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, timm {timm.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}, load average {load:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ[DATA_DIR_ENV] = str(tmp / "studio")  # runs and models stay out of the user's own folder
        data = write_images(tmp / "full_data", args.images, args.source_size)
        ours, plain = [], []
        for repeat in range(args.repeats):  # alternated, so background load and warm-up hit both alike
            seconds, ours_images, items = ours_full_epoch(data, args, tmp / f"full_model_{repeat}")
            ours.append(seconds)
            plain.append(plain_full_epoch(items, args)[0])
        ours_s, plain_s, plain_images = min(ours), min(plain), ours_images
        print(f"\n(a) one full fine-tune epoch: {args.model} (random weights), {args.image_size} px, "
              f"batch {args.batch_size}, {len(items)} training images, '{AUGMENTATION}' augmentation, "
              f"fastest of {args.repeats} epochs each")
        print(f"  {'loop':24} {'images':>7} {'seconds':>8} {'images/s':>9}")
        for name, seconds, images in (("Classifier Studio", ours_s, ours_images),
                                      ("plain timm/PyTorch", plain_s, plain_images)):
            print(f"  {name:24} {images:7d} {seconds:8.2f} {images / seconds:9.1f}")
        ratio = (ours_images / ours_s) / (plain_images / plain_s)
        print(f"  ratio ours/plain (images/s): {ratio:.2f}   (goal ≥ 1.0)")

        data = write_images(tmp / "quick_data", args.quick_images, args.source_size, seed=1)
        phases, epochs = quick_phases(data, args, tmp / "quick_model")
        print(f"\n(b) Quick method, {args.quick_images} images, {args.model} at {args.image_size} px on {args.device}, "
              f"scan to saved bundle ({epochs} head epochs)")
        for name, seconds in phases.items():
            print(f"  {name:28} {seconds:7.2f} s")
        print(f"  {'total':28} {sum(phases.values()):7.2f} s   (goal < 30 s)")

        print(f"\n(c) one 4032 x 3024 photo decoded and augmented for training at {args.image_size} px, fastest of 10; "
              "ours from the second epoch")
        print(f"  {'file':5} {'preset':9} {'full decode':>12} {'ours':>9} {'decoded at':>11} {'ratio':>6}")
        for photo in phone_photo(tmp):
            photo_rows(photo, args.image_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
