"""The curated model catalog shown by the GUI's model picker and the CLI's `models` command.

The curated table lives here; the computed numbers (params, MACs, input size, classes) come from
resources/catalog.json, which scripts/generate_catalog.py builds from this same table.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine.paths import resources_dir

TORCHVISION_PREFIX = "torchvision/"
CATALOG_FILENAME = "catalog.json"
# The built-in model (engine/builtin.py) is this architecture with weights shipped inside the product.
BUILTIN_ARCH = "tf_efficientnet_lite0.in1k"
BUILTIN_TAG = "built in · offline"


@dataclass(frozen=True)
class CatalogEntry:
    arch: str  # timm name with the curated pretrained tag ("resnet50.a1_in1k"), or "torchvision/alexnet"
    family: str  # e.g. "ResNet", "EfficientNet", "Vision Transformer"
    display_name: str  # e.g. "ResNet-50"
    params: int  # parameter count of the real model, from resources/catalog.json
    gflops: float  # GMACs (multiply-adds, = FLOPs / 2) at input_size, batch 1
    input_size: tuple[int, int]  # (H, W) the curated checkpoint was trained/evaluated at
    tags: tuple[str, ...]  # guidance tags, drawn from TAGS
    source: str  # "timm" or "torchvision"
    num_classes: int  # classes of the curated checkpoint's head


@dataclass(frozen=True)
class CuratedModel:
    """One row of the hand-curated table: what a person chose, as opposed to what was measured."""

    arch: str
    family: str
    display_name: str

    @property
    def source(self) -> str:
        if self.arch == BUILTIN_ARCH:
            return "builtin"
        return "torchvision" if self.arch.startswith(TORCHVISION_PREFIX) else "timm"


# Each checkpoint tag is timm's default tag for its architecture (as of timm 1.0.31 every default
# here is a 1000-class ImageNet head), so fine-tuning starts from timm's recommended weights.
# Order is the display order: light mobile models first, then the classic CNN families, modern CNNs,
# transformers and hybrids, each family kept together.
CURATED: tuple[CuratedModel, ...] = tuple(
    CuratedModel(arch, family, name)
    for arch, family, name in (
        # First: works offline from the first start, its weights ship with Classifier Studio.
        (BUILTIN_ARCH, "EfficientNet", "EfficientNet-Lite0"),
        ("mobilenetv2_100.ra_in1k", "MobileNet", "MobileNetV2"),
        ("mobilenetv3_small_100.lamb_in1k", "MobileNet", "MobileNetV3-Small"),
        ("mobilenetv3_large_100.ra_in1k", "MobileNet", "MobileNetV3-Large"),
        ("mobilenetv4_conv_small.e2400_r224_in1k", "MobileNet", "MobileNetV4-Conv-Small"),
        ("mobilenetv4_hybrid_medium.e200_r256_in12k_ft_in1k", "MobileNet", "MobileNetV4-Hybrid-Medium"),
        # The tf_ ports for all eight: the only set that covers B0-B7 at the paper's resolutions
        # (224 ... 600); Noisy Student weights are the most accurate with a 1000-class head.
        ("tf_efficientnet_b0.ns_jft_in1k", "EfficientNet", "EfficientNet-B0"),
        ("tf_efficientnet_b1.ns_jft_in1k", "EfficientNet", "EfficientNet-B1"),
        ("tf_efficientnet_b2.ns_jft_in1k", "EfficientNet", "EfficientNet-B2"),
        ("tf_efficientnet_b3.ns_jft_in1k", "EfficientNet", "EfficientNet-B3"),
        ("tf_efficientnet_b4.ns_jft_in1k", "EfficientNet", "EfficientNet-B4"),
        ("tf_efficientnet_b5.ns_jft_in1k", "EfficientNet", "EfficientNet-B5"),
        ("tf_efficientnet_b6.ns_jft_in1k", "EfficientNet", "EfficientNet-B6"),
        ("tf_efficientnet_b7.ns_jft_in1k", "EfficientNet", "EfficientNet-B7"),
        ("tf_efficientnetv2_s.in21k_ft_in1k", "EfficientNet", "EfficientNetV2-S"),
        ("resnet18.a1_in1k", "ResNet", "ResNet-18"),
        ("resnet34.a1_in1k", "ResNet", "ResNet-34"),
        ("resnet50.a1_in1k", "ResNet", "ResNet-50"),
        ("resnet101.a1h_in1k", "ResNet", "ResNet-101"),
        ("resnet152.a1h_in1k", "ResNet", "ResNet-152"),
        ("wide_resnet50_2.racm_in1k", "Wide ResNet", "Wide ResNet-50"),
        ("resnext50_32x4d.a1h_in1k", "ResNeXt", "ResNeXt-50"),
        ("seresnet50.a1_in1k", "SENet", "SE-ResNet-50"),
        ("seresnext50_32x4d.racm_in1k", "SENet", "SE-ResNeXt-50"),
        ("skresnet18.ra_in1k", "SKNet", "SK-ResNet-18"),
        ("resnest50d.in1k", "ResNeSt", "ResNeSt-50"),
        ("regnety_032.ra_in1k", "RegNet", "RegNetY-3.2GF"),
        ("densenet121.ra_in1k", "DenseNet", "DenseNet-121"),
        ("inception_v3.tv_in1k", "Inception", "Inception-v3"),
        ("inception_v4.tf_in1k", "Inception", "Inception-v4"),
        ("inception_resnet_v2.tf_in1k", "Inception-ResNet", "Inception-ResNet-v2"),
        # timm renamed Chollet's original Xception to legacy_xception; plain "xception" has no weights.
        ("legacy_xception.tf_in1k", "Xception", "Xception"),
        ("vgg16.tv_in1k", "VGG", "VGG-16"),
        # timm has no AlexNet, so this one comes from torchvision.models.alexnet.
        ("torchvision/alexnet", "AlexNet", "AlexNet"),
        ("convnext_tiny.in12k_ft_in1k", "ConvNeXt", "ConvNeXt-Tiny"),
        ("convnext_base.fb_in22k_ft_in1k", "ConvNeXt", "ConvNeXt-Base"),
        ("convnextv2_tiny.fcmae_ft_in22k_in1k", "ConvNeXt", "ConvNeXt-V2-Tiny"),
        ("inception_next_tiny.sail_in1k", "InceptionNeXt", "InceptionNeXt-Tiny"),
        ("vit_tiny_patch16_224.augreg_in21k_ft_in1k", "Vision Transformer", "ViT-Ti"),
        ("vit_small_patch16_224.augreg_in21k_ft_in1k", "Vision Transformer", "ViT-S"),
        ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "Vision Transformer", "ViT-B"),
        ("vit_large_patch16_224.augreg_in21k_ft_in1k", "Vision Transformer", "ViT-L"),
        ("deit_base_distilled_patch16_224.fb_in1k", "DeiT", "DeiT-B Distilled"),
        ("beit_base_patch16_224.in22k_ft_in22k_in1k", "BEiT", "BEiT-B"),
        # EVA-02 only ships in1k heads at 336 px; Small is the smallest that is a strong classifier.
        ("eva02_small_patch14_336.mim_in22k_ft_in1k", "EVA-02", "EVA-02-S"),
        # No DINOv2 entry: timm's DINOv2 checkpoints (vit_*_patch14[_reg4]_dinov2.lvd142m) are
        # headless feature extractors (num_classes 0); none has an ImageNet classifier head.
        ("swin_tiny_patch4_window7_224.ms_in1k", "Swin Transformer", "Swin-T"),
        ("swin_base_patch4_window7_224.ms_in22k_ft_in1k", "Swin Transformer", "Swin-B"),
        ("swinv2_tiny_window8_256.ms_in1k", "Swin Transformer", "Swin-V2-T"),
        ("pvt_v2_b2.in1k", "PVT", "PVT-V2-B2"),
        ("crossvit_15_240.in1k", "CrossViT", "CrossViT-15"),
        ("coatnet_0_rw_224.sw_in1k", "CoAtNet", "CoAtNet-0"),
        ("maxvit_tiny_tf_224.in1k", "MaxViT", "MaxViT-Tiny"),
        ("efficientvit_b1.r224_in1k", "EfficientViT", "EfficientViT-B1"),
    )
)

# The fixed tag vocabulary, in the order tags are listed on an entry.
TAGS: tuple[str, ...] = (
    BUILTIN_TAG,
    "default",
    "fastest",
    "smallest",
    "mobile/edge",
    "most accurate",
    "balanced",
    "small datasets",
    "medium datasets",
    "large datasets",
)

# Which display names carry each tag. Mostly transcribed from the fine-tuning guide's "Choosing the
# Right Model" (by priority) and "Dataset Size Guidelines"; kept as names so it reads like the guide.
GUIDANCE: dict[str, tuple[str, ...]] = {
    BUILTIN_TAG: ("EfficientNet-Lite0",),
    "default": ("EfficientNet-Lite0",),
    # The guide also lists "ViT Small MSN"; timm has no MSN checkpoint, so it is not mapped.
    "fastest": ("ResNet-18", "MobileNetV3-Small"),
    "smallest": ("MobileNetV3-Small", "ResNet-18", "EfficientNet-B0"),
    # The guide names the first three; the other MobileNets are designed for mobile vision per the
    # model-family reference (MobileNet v1-v4 papers).
    "mobile/edge": (
        "EfficientNet-Lite0", "MobileNetV3-Small", "EfficientNet-B0", "ResNet-18",
        "MobileNetV2", "MobileNetV3-Large", "MobileNetV4-Conv-Small", "MobileNetV4-Hybrid-Medium",
    ),
    # The guide's third pick, EfficientNet-B0, is there for parameter efficiency, not peak accuracy,
    # so it is tagged "balanced" instead of "most accurate".
    "most accurate": ("ViT-L", "ResNet-101"),
    # "excellent balance of speed and accuracy" / "good for most use cases" / "good accuracy with
    # reasonable speed".
    "balanced": ("ResNet-50", "ViT-B", "EfficientNet-B0"),
    "small datasets": ("ResNet-18", "MobileNetV3-Small"),  # < 1,000 images
    "medium datasets": ("ResNet-50", "EfficientNet-B0"),  # 1,000-10,000 images
    "large datasets": ("ViT-Ti", "ViT-S", "ViT-B", "ViT-L"),  # > 10,000: "ViT models particularly effective"
}

_BY_DISPLAY_NAME = {m.display_name: m for m in CURATED}
DEFAULT_ARCH: str = _BY_DISPLAY_NAME[GUIDANCE["default"][0]].arch  # the built-in model: works offline


def catalog_path() -> Path:
    return resources_dir() / CATALOG_FILENAME


def base_name(arch: str) -> str:
    """The architecture without its pretrained tag: "resnet50.a1_in1k" -> "resnet50"."""
    return arch.split(".", 1)[0]


def tags_for(display_name: str) -> tuple[str, ...]:
    return tuple(tag for tag in TAGS if display_name in GUIDANCE.get(tag, ()))


def catalog() -> list[CatalogEntry]:
    """Curated entries in display order. A fresh list each call so callers may sort or filter it."""
    return list(_entries())


@functools.lru_cache(maxsize=1)
def _entries() -> tuple[CatalogEntry, ...]:
    data = json.loads(catalog_path().read_text(encoding="utf-8"))
    numbers = data["models"]
    missing = [m.arch for m in CURATED if m.arch not in numbers]
    if missing:
        # A developer error (table edited, JSON not regenerated), not something a user can fix.
        raise RuntimeError(
            f"{catalog_path()} has no numbers for {', '.join(missing)}; "
            "run scripts/generate_catalog.py"
        )
    return tuple(_make_entry(m, numbers[m.arch]) for m in CURATED)


def _make_entry(model: CuratedModel, numbers: dict) -> CatalogEntry:
    height, width = numbers["input_size"]
    return CatalogEntry(
        arch=model.arch,
        family=model.family,
        display_name=model.display_name,
        params=int(numbers["params"]),
        gflops=numbers["macs"] / 1e9,
        input_size=(int(height), int(width)),
        tags=tags_for(model.display_name),
        source=model.source,
        num_classes=int(numbers["num_classes"]),
    )


def _normalize(name: str) -> str:
    # Display names are matched loosely so "mobilenet v3 large" and "MobileNetV3-Large" agree.
    return re.sub(r"[\s_-]+", "", name.strip().lower())


@functools.lru_cache(maxsize=1)
def _index() -> tuple[dict[str, CatalogEntry], dict[str, CatalogEntry], dict[str, CatalogEntry]]:
    entries = _entries()
    by_arch = {e.arch: e for e in entries}
    by_base = {base_name(e.arch): e for e in entries}
    by_display = {_normalize(e.display_name): e for e in entries}
    return by_arch, by_base, by_display


def find_entry(name: str) -> CatalogEntry | None:
    """Look up by exact arch, by arch without its tag, then by display name ignoring case/dashes."""
    name = name.strip()
    by_arch, by_base, by_display = _index()
    return by_arch.get(name) or by_base.get(name) or by_display.get(_normalize(name))


@functools.lru_cache(maxsize=1)
def _timm_pretrained_names() -> frozenset[str]:
    import timm  # deferred: importing timm/torch costs a second or two, and catalog() doesn't need it

    return frozenset(timm.list_pretrained())


def is_known_architecture(name: str) -> bool:
    """True for catalog entries and for any timm model name, bare or with an existing pretrained tag."""
    name = name.strip()
    if not name:
        return False
    if find_entry(name) is not None:
        return True
    if name.startswith(TORCHVISION_PREFIX):
        # Only the curated torchvision models are wired into model building.
        return False
    import timm

    base, _, tag = name.partition(".")
    if not timm.is_model(base):
        return False
    # timm.is_model accepts any tag, but create_model rejects tags it has no config for.
    return not tag or name in _timm_pretrained_names()


def suggest_architectures(name: str, count: int = 3) -> list[str]:
    """timm model names close to a mistyped `name`, for "did you mean" hints."""
    import difflib

    import timm

    return difflib.get_close_matches(name.strip().split(".", 1)[0], timm.list_models(), n=count, cutoff=0.6)


def architecture_problem(name: str) -> str:
    """Why `name` cannot be loaded from the Hub, in words for the user ("" when it can); imports timm for names
    outside the catalog."""
    name = name.strip()
    if is_known_architecture(name):
        return ""
    import timm

    base = name.split(".", 1)[0]
    if name.startswith(TORCHVISION_PREFIX):
        return f"Unknown model '{name}'. Of torchvision's models, only those in the list can be loaded."
    if timm.is_model(base):
        tags = ", ".join(pretrained.split(".", 1)[1] for pretrained in timm.list_pretrained(f"{base}.*")[:4])
        hint = f"Its pretrained tags include {tags}." if tags else f"timm has no pretrained weights for {base}."
        return f"timm has no pretrained weights called '{name}'. {hint}"
    close = suggest_architectures(base)
    hint = f"Did you mean {', '.join(close)}?" if close else "Search the list, or check the name on the timm website."
    return f"Unknown model '{name}'. {hint}"
