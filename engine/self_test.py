"""`main.py --self-test`: checks, part by part, what packaging tends to break (timm's model modules, the built-in
model, HEIC and AVIF decoding, ONNX Runtime, OpenCV's video decoding, data-loader worker processes) and prints PASS
or FAIL for each.

Works offline and without a display. Every file goes into one temporary folder, which is also the data folder while
the test runs, and is removed afterwards. Heavy modules are imported inside the parts, so a module a frozen build
left out fails its part instead of the whole test. The photo resources/self-test/chelsea.jpg is scikit-image's
"chelsea" (CC0, by the photographer Stefan van der Walt), scaled to 300 x 200 px.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.paths import DATA_DIR_ENV, resources_dir

if TYPE_CHECKING:
    from engine.predict import Classifier, TopClass

PHOTO = Path("self-test") / "chelsea.jpg"
CAT_CLASSES = range(281, 286)  # ImageNet-1k's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat
VIDEO_FRAMES, VIDEO_FPS = 15, 15
LIVE_PREDICTIONS = 3
LIVE_TIMEOUT_S = 30.0
TRAIN_CLASSES = {"red": (220, 40, 40), "blue": (40, 70, 220)}
TRAIN_IMAGES_PER_CLASS = 8
MAX_REASON_CHARS = 300
SELF_TEST_CLIP = "ViT-S-32-alt"  # the smallest open_clip model with CLIP's own tokenizer


class SelfTestFailure(Exception):
    """A part ran but what it checks does not hold; the message is the FAIL line's reason."""


@dataclass
class SelfTestContext:
    """What the parts share: the temporary folder, and the built-in model loaded once for the parts that use it."""

    folder: Path
    _classifier: Classifier | None = None

    @property
    def photo(self) -> Path:
        return resources_dir() / PHOTO

    def classifier(self) -> Classifier:
        """The built-in model on the CPU in PyTorch; a part after a failed load tries again and fails the same way."""
        if self._classifier is None:
            from engine.models import load_model
            from engine.predict import Classifier
            from engine.specs import builtin_model_spec

            self._classifier = Classifier(load_model(builtin_model_spec(), device="cpu"))
        return self._classifier

    def release(self) -> None:
        self._classifier = None


Part = tuple[str, Callable[[SelfTestContext], str]]  # a name and a check that returns what it saw, or raises


def run_self_test(parts: Sequence[Part] | None = None, out: TextIO | None = None, verbose: bool = False) -> int:
    """Run each part in order, timed, one PASS/FAIL line each, then a summary line; 0 only if every part passed."""
    parts = list(ENGINE_PARTS if parts is None else parts)
    out = out or sys.stdout
    failed: list[str] = []
    # ignore_cleanup_errors: on Windows a file a library still holds open must not turn a pass into a crash.
    with (
        tempfile.TemporaryDirectory(prefix="classifier-studio-self-test-", ignore_cleanup_errors=True) as tmp,
        _data_dir(Path(tmp) / "data"),
    ):
        context = SelfTestContext(Path(tmp))
        for name, check in parts:
            started = time.perf_counter()
            try:
                status, detail = "PASS", check(context)
            except Exception as exc:  # noqa: BLE001 - a failing part is reported and the others still run
                status, detail = "FAIL", one_line_reason(exc)
                failed.append(name)
                if verbose:
                    traceback.print_exc(file=sys.stderr)
            seconds = time.perf_counter() - started
            print(f"{status}  {name:<12}{detail} ({seconds:.1f} s)", file=out, flush=True)
        context.release()  # lets go of the model's files before the folder is removed
    if failed:
        passed = len(parts) - len(failed)
        print(f"Self-test FAILED ({passed}/{len(parts)} passed; failed: {', '.join(failed)})", file=out, flush=True)
        return 1
    print(f"Self-test passed ({len(parts)}/{len(parts)})", file=out, flush=True)
    return 0


def one_line_reason(exc: BaseException) -> str:
    from engine.errors import UserFacingError

    text = str(exc) if isinstance(exc, (SelfTestFailure, UserFacingError)) else f"{type(exc).__name__}: {exc}"
    line = " ".join(text.split())  # tracebacks and multi-line messages (OpenCV's, torch's) fold onto one line
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


@contextlib.contextmanager
def _data_dir(folder: Path) -> Iterator[None]:
    """The data folder is `folder` while the test runs (spawned workers inherit it), then what it was before."""
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = before


def check_catalog(context: SelfTestContext) -> str:
    """Every catalog model can be built: a frozen build that left out a timm model module fails here."""
    import timm

    from engine.catalog import TORCHVISION_PREFIX, base_name, catalog
    from engine.models import TORCHVISION_MODELS

    entries = catalog()
    pretrained = set(timm.list_pretrained())
    unknown, torchvision_count = [], 0
    for entry in entries:
        if entry.arch.startswith(TORCHVISION_PREFIX):
            import torchvision

            torchvision_count += 1
            known = TORCHVISION_MODELS[entry.arch[len(TORCHVISION_PREFIX):]][0] in torchvision.models.list_models()
        else:
            known = timm.is_model(base_name(entry.arch)) and ("." not in entry.arch or entry.arch in pretrained)
        if not known:
            unknown.append(entry.arch)
    if unknown:
        raise SelfTestFailure(f"{len(unknown)} catalog models are unknown to timm/torchvision: {', '.join(unknown)}")
    timm_count = len(entries) - torchvision_count
    return f"all {len(entries)} catalog models known (timm {timm_count}, torchvision {torchvision_count})"


def check_model(context: SelfTestContext) -> str:
    classifier = context.classifier()
    best = _classify_photo(classifier, context.photo)[0]
    return f'{classifier.loaded.name} says "{best.label}" {best.prob * 100:.0f} % for {context.photo.name}'


def check_photo_formats(context: SelfTestContext) -> str:
    """The cat photo as HEIC (libheif, through pi-heif) and as AVIF (Pillow's own plugin), each read by the model:
    the formats whose decoders are native libraries a frozen build can leave behind."""
    from PIL import Image

    heic = context.photo.with_suffix(".heic")
    avif = context.folder / "chelsea.avif"
    Image.open(context.photo).save(avif, quality=90)
    said = [_classify_photo(context.classifier(), photo)[0].label for photo in (heic, avif)]
    return f'HEIC: "{said[0]}", AVIF: "{said[1]}"'


def check_onnxruntime(context: SelfTestContext) -> str:
    """The built-in model exported to ONNX and run by ONNX Runtime, not PyTorch's silent fallback; found again by a
    quick start; and in int8."""
    from engine.events import Log
    from engine.onnx_cache import onnx_cache_dir
    from engine.predict import Classifier
    from engine.runtime import create_backend

    pytorch = context.classifier()
    notes: list[Log] = []
    # The export goes to the data folder's cache (the temporary one here), where the window's start-up load finds it.
    backend = create_backend(
        pytorch.loaded, "onnxruntime", on_event=lambda e: notes.append(e) if isinstance(e, Log) else None,
        cache_dir=onnx_cache_dir(),
    )
    if not backend.name.startswith("ONNX Runtime"):
        warnings = [note.text for note in notes if note.level == "warning"]
        raise SelfTestFailure(f"the model ran in {backend.name}: {warnings[-1] if warnings else 'no reason given'}")
    onnx_best = _classify_photo(Classifier(pytorch.loaded, backend), context.photo)[0]
    torch_best = _classify_photo(pytorch, context.photo)[0]
    if onnx_best.index != torch_best.index:
        raise SelfTestFailure(f'ONNX Runtime says "{onnx_best.label}" where PyTorch says "{torch_best.label}"')
    _check_quick_start(Classifier(pytorch.loaded, backend), context.photo, onnx_best)
    # int8 needs ONNX Runtime's quantization tools, which a frozen build easily leaves out.
    from engine.decode import decode_image

    photo = pytorch.preprocessor.batch([decode_image(context.photo)]).numpy()
    quantized = create_backend(
        pytorch.loaded, "onnxruntime", int8=True, calibration=list(photo), cache_dir=onnx_cache_dir(),
        on_event=lambda e: notes.append(e) if isinstance(e, Log) else None,
    )
    if quantized.agreement is None:
        warnings = [note.text for note in notes if note.level == "warning"]
        raise SelfTestFailure(f"int8 is not used: {warnings[-1] if warnings else 'no reason given'}")
    int8_best = _classify_photo(Classifier(pytorch.loaded, quantized), context.photo)[0]
    return (
        f'{backend.name} agrees with PyTorch, also from a quick start: '
        f'"{onnx_best.label}" {onnx_best.prob * 100:.0f} %; '
        f'int8: "{int8_best.label}" {int8_best.prob * 100:.0f} %'
    )


def _check_quick_start(classifier: Classifier, photo: Path, expected: TopClass) -> None:
    """The next start's path: the checked ONNX file, found again through its record (file times, versions)."""
    from engine.events import Log
    from engine.quick_start import quick_classifier, remember
    from engine.specs import InferenceChoice, builtin_model_spec

    spec, choice, notes = builtin_model_spec(), InferenceChoice("cpu"), []
    remember(spec, choice, classifier)
    quick = quick_classifier(spec, choice, on_event=lambda e: notes.append(e.text) if isinstance(e, Log) else None)
    if quick is None:
        raise SelfTestFailure(f"no quick start from the checked ONNX file: {notes[-1] if notes else 'no record'}")
    best = _classify_photo(quick, photo)[0]
    if best.index != expected.index:
        raise SelfTestFailure(f'the quick start says "{best.label}" where the full load says "{expected.label}"')


def check_live(context: SelfTestContext) -> str:
    """A generated MJPG video through the live pipeline: proves the bundled OpenCV writes and decodes video."""
    from engine.live.pipeline import LivePipeline
    from engine.live.sources import VideoFileSource

    classifier = context.classifier()
    video = _write_photo_video(context.photo, context.folder / "self-test.avi")
    pipeline = LivePipeline(VideoFileSource(video))
    predictions = []
    try:
        pipeline.start()
        deadline = time.monotonic() + LIVE_TIMEOUT_S
        while len(predictions) < LIVE_PREDICTIONS and time.monotonic() < deadline:
            prediction = pipeline.step(classifier, timeout=0.1)
            if prediction is not None:
                predictions.append(prediction)
            elif pipeline.finished:  # the file ended (or failed) and its last frame was classified
                if pipeline.status.state == "failed":
                    raise SelfTestFailure(pipeline.status.message)
                break
    finally:
        pipeline.stop()  # joins the capture thread and releases the file
    if not predictions:
        raise SelfTestFailure(f"no frame of {video.name} reached the model within {LIVE_TIMEOUT_S:.0f} s")
    not_cats = [p.top[0].label for p in predictions if p.top[0].index not in CAT_CLASSES]
    if not_cats:
        raise SelfTestFailure(f'video frames of the cat were classified as "{not_cats[0]}"')
    best = predictions[-1].top[0]
    return f'{len(predictions)} frames of a generated MJPG video: "{best.label}" {best.prob * 100:.0f} %'


def check_training(context: SelfTestContext) -> str:
    """One epoch of a tiny model with a data-loader worker process: proves spawned workers start in a frozen app."""
    import torch

    from engine.bundle import is_bundle
    from engine.training.dataset import scan_class_folders
    from engine.training.plan import TrainPlan
    from engine.training.run import create_run
    from engine.training.trainer import train_run

    data = _write_tiny_dataset(context.folder / "colours")
    plan = TrainPlan(
        str(data), arch="test_resnet", init="scratch", method="full", epochs=1, image_size=64, batch_size=8,
        workers=1, device="cpu", output=str(context.folder / "trained"),
    )
    run = create_run(plan, scan_class_folders(data), parent=context.folder / "runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on small shared machines OpenMP's spinning threads slow a tiny model many times over
    try:
        result = train_run(run.folder)
    finally:
        torch.set_num_threads(threads)
    if result.epochs_run != 1 or not is_bundle(result.bundle):
        raise SelfTestFailure(f"training ran {result.epochs_run} epochs and left no model bundle in {result.bundle}")
    images = len(TRAIN_CLASSES) * TRAIN_IMAGES_PER_CLASS
    return f"1 epoch of test_resnet on {images} images with a data-loader worker process, model saved"


def check_zero_shot(context: SelfTestContext) -> str:
    """CLIP zero-shot on the photo, with a small open_clip model's random weights (the real ones are downloaded):
    a frozen build that left out open_clip's model configs or its tokenizer's vocabulary fails here."""
    from safetensors.torch import save_file

    from engine.models import load_model
    from engine.predict import Classifier
    from engine.runtime import PyTorchBackend
    from engine.specs import ModelSpec, ZeroShot
    from engine.zero_shot import new_clip

    weights = context.folder / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in new_clip(SELF_TEST_CLIP).state_dict().items()}, str(weights))
    classes = ("cat", "coffee mug")
    loaded = load_model(ModelSpec(f"clip/{SELF_TEST_CLIP}", ZeroShot(classes, str(weights))), device="cpu")
    result = Classifier(loaded, PyTorchBackend(loaded)).classify_files([context.photo])[0]
    if result.error or {top.label for top in result.top} != set(classes):
        raise SelfTestFailure(f"zero-shot gave {result.error or [top.label for top in result.top]}")
    if abs(sum(top.prob for top in result.top) - 1) > 1e-4:
        raise SelfTestFailure("zero-shot probabilities do not add up to 1")
    return f"CLIP {SELF_TEST_CLIP} (random weights) sorted the photo into {len(classes)} named classes"


ENGINE_PARTS: tuple[Part, ...] = (
    ("catalog", check_catalog),
    ("model", check_model),
    ("photos", check_photo_formats),
    ("onnxruntime", check_onnxruntime),
    ("zero-shot", check_zero_shot),
    ("live", check_live),
    ("training", check_training),
)


def _classify_photo(classifier: Classifier, photo: Path) -> tuple[TopClass, ...]:
    """The top classes for the cat photo; a SelfTestFailure if it cannot be read or the model sees no cat."""
    result = classifier.classify_files([photo])[0]
    if result.error:
        raise SelfTestFailure(result.error)
    best = result.top[0]
    if best.index not in CAT_CLASSES:
        said = f'"{best.label}" ({best.prob * 100:.0f} %)'
        raise SelfTestFailure(f"{classifier.backend.name} says {said} for a photo of a cat")
    return result.top


def _write_photo_video(photo: Path, target: Path) -> Path:
    import numpy as np

    from engine.decode import decode_image
    from engine.live.sources import opencv

    cv2 = opencv()

    bgr = np.ascontiguousarray(np.asarray(decode_image(photo))[..., ::-1])
    height, width = bgr.shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), float(VIDEO_FPS), (width, height))
    try:
        if not writer.isOpened():
            raise SelfTestFailure(f"OpenCV cannot write MJPG video into {target.suffix} files")
        for _ in range(VIDEO_FRAMES):
            writer.write(bgr)
    finally:
        writer.release()
    return target


def _write_tiny_dataset(root: Path) -> Path:
    """root/<colour>/N.png: noisy squares of two colours, small enough to train on in a second."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in TRAIN_CLASSES.items():
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(TRAIN_IMAGES_PER_CLASS):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return root
