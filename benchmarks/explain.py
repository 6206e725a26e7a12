"""How long "Where it looked" takes, against the plain way of computing the same occlusion map, in the same run.

For each model, on a real photo: one classification (decode + preprocess + predict, what the card already shows),
then engine.explain through the engine's backend (`auto`: ONNX Runtime on the CPU; the 49 hidden copies in batches
of 8), then the same 50 forward passes done the plain way: timm in eager PyTorch, one hidden copy at a time.
Medians of a few runs each, interleaved so background load hits both alike. Random weights are seeded and
denormals flushed, as in benchmarks/live.py, to time what a trained model would do; the built-in model has its
real weights.

    python benchmarks/explain.py [--models a,b] [--device cpu] [--backend auto] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.decode import decode_image  # noqa: E402
from engine.explain import POSITIONS, explain, hiding_places  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.predict import Classifier  # noqa: E402
from engine.runtime import create_backend  # noqa: E402
from engine.specs import BACKENDS, ModelSpec, RandomInit, builtin_model_spec  # noqa: E402

MODELS = ["tf_efficientnet_lite0", "mobilenetv3_large_100", "resnet50"]


def model_spec(arch: str) -> ModelSpec:
    return builtin_model_spec() if arch == "tf_efficientnet_lite0" else ModelSpec(arch, RandomInit())


def seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def plain_occlusion(model: torch.nn.Module, picture: np.ndarray, index: int) -> np.ndarray:
    """The same drops, the plain way: eager PyTorch, one hidden copy per forward pass."""
    _, _, height, width = picture.shape
    with torch.inference_mode():
        base = torch.from_numpy(picture)
        prob = model(base).softmax(-1)[0, index]
        drops = []
        for top, left, bottom, right in hiding_places(height, width):
            hidden = base.clone()
            hidden[:, :, top:bottom, left:right] = 0
            drops.append(float(prob - model(hidden).softmax(-1)[0, index]))
    return np.asarray(drops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {POSITIONS * POSITIONS} hidden copies + the whole picture")
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "cat.jpg"
        Image.fromarray(data.chelsea()).save(photo, quality=92)
        print(f"{'model':22} {'backend':17} {'classify':>9} {'where it looked':>15} {'plain eager':>11} {'ratio':>5}")
        for arch in args.models.split(","):
            torch.manual_seed(0)
            loaded = load_model(model_spec(arch), device=args.device)
            classifier = Classifier(loaded, create_backend(loaded, args.backend))
            image = decode_image(str(photo), classifier.preprocessor.decode_size)
            picture = classifier.preprocessor.batch_array([image])
            index = classifier.predict_batch(picture, topk=1)[0][0].index
            plain_model = loaded.model.float().eval()
            classify = [seconds(lambda: classifier.classify_files([photo], batch_size=1)) for _ in range(5)]
            explain(classifier, image, index)  # warm-up, both ways
            plain_occlusion(plain_model, picture, index)
            ours, plain = [], []
            for _ in range(args.repeats):  # interleaved
                ours.append(seconds(lambda: explain(classifier, image, index)))
                plain.append(seconds(lambda: plain_occlusion(plain_model, picture, index)))
            classify_s, ours_s, plain_s = map(statistics.median, (classify[1:], ours, plain))
            print(f"{arch:22} {classifier.backend.name:17} {classify_s * 1000:7.0f}ms {ours_s:14.2f}s "
                  f"{plain_s:10.2f}s {ours_s / plain_s:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
