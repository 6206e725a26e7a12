"""Tests for engine/catalog.py and the generated resources/catalog.json it reads."""
from __future__ import annotations

import json

import pytest
import timm
import torch

from engine import catalog as cat
from engine.catalog import DEFAULT_ARCH, CatalogEntry, catalog, find_entry, is_known_architecture
from engine.paths import resources_dir

# Every family the curated list must cover (the list, in the catalog's family names).
REQUIRED_FAMILIES = {
    "ResNet", "Wide ResNet", "ResNeXt", "SENet", "SKNet", "ResNeSt", "DenseNet", "Inception",
    "Inception-ResNet", "Xception", "VGG", "MobileNet", "EfficientNet", "RegNet", "ConvNeXt",
    "InceptionNeXt", "CoAtNet", "MaxViT", "Vision Transformer", "DeiT", "Swin Transformer", "PVT",
    "CrossViT", "BEiT", "EfficientViT", "EVA-02", "AlexNet",
}

# Published parameter counts (model-family reference tables); the catalog must match exactly.
PUBLISHED_PARAMS = {
    "ResNet-18": 11_689_512,
    "ResNet-50": 25_557_032,
    "ConvNeXt-Tiny": 28_589_128,
    "ViT-S": 22_050_664,
    "ViT-B": 86_567_656,
}


@pytest.fixture(scope="module")
def catalog_json() -> dict:
    return json.loads((resources_dir() / cat.CATALOG_FILENAME).read_text(encoding="utf-8"))


def by_name(display_name: str) -> CatalogEntry:
    entry = find_entry(display_name)
    assert entry is not None, display_name
    return entry


def test_every_required_family_and_model_is_present() -> None:
    entries = catalog()
    assert REQUIRED_FAMILIES <= {e.family for e in entries}
    names = {e.display_name for e in entries}
    for required in (
        [f"ResNet-{n}" for n in (18, 34, 50, 101, 152)]
        + [f"EfficientNet-B{n}" for n in range(8)]
        + ["ViT-Ti", "ViT-S", "ViT-B", "ViT-L", "MobileNetV3-Small", "MobileNetV3-Large", "AlexNet"]
    ):
        assert required in names


def test_entries_are_grouped_by_family_and_unique() -> None:
    entries = catalog()
    # Each family appears as one contiguous run in display order (the built-in model leads the list).
    families = [e.family for e in entries if e.source != "builtin"]
    runs = [f for i, f in enumerate(families) if i == 0 or families[i - 1] != f]
    assert len(runs) == len(set(runs))
    assert len({e.arch for e in entries}) == len(entries)
    assert len({cat._normalize(e.display_name) for e in entries}) == len(entries)


def test_catalog_is_cached_but_returns_a_fresh_list() -> None:
    first, second = catalog(), catalog()
    assert first == second and first is not second
    assert all(a is b for a, b in zip(first, second))


@pytest.mark.parametrize("display_name, params", sorted(PUBLISHED_PARAMS.items()))
def test_published_parameter_counts(display_name: str, params: int) -> None:
    entry = by_name(display_name)
    assert entry.params == params
    assert entry.num_classes == 1000 and entry.input_size == (224, 224)


@pytest.mark.parametrize(
    "arch", ["resnet18.a1_in1k", "mobilenetv3_small_100.lamb_in1k", "vit_tiny_patch16_224.augreg_in21k_ft_in1k"]
)
def test_json_numbers_match_a_real_cpu_model(arch: str, catalog_json: dict) -> None:
    # Real tensors on the CPU, not the generator's meta device: proves the JSON was computed.
    model = timm.create_model(arch, pretrained=False)
    numbers = catalog_json["models"][arch]
    assert sum(p.numel() for p in model.parameters()) == numbers["params"]
    _, height, width = model.pretrained_cfg["input_size"]
    assert numbers["input_size"] == [height, width]
    assert numbers["num_classes"] == model.num_classes


def test_json_is_in_sync_with_the_curated_table(catalog_json: dict) -> None:
    assert set(catalog_json["models"]) == {m.arch for m in cat.CURATED}
    assert {"timm", "torch"} <= set(catalog_json["generated_with"])
    for numbers in catalog_json["models"].values():
        assert numbers["params"] > 0 and numbers["macs"] > 0 and numbers["num_classes"] > 0


def test_entry_fields_are_consistent() -> None:
    for entry in catalog():
        expected_source = "torchvision" if entry.arch.startswith("torchvision/") else "timm"
        assert entry.source == ("builtin" if entry.arch == cat.BUILTIN_ARCH else expected_source)
        assert all(isinstance(n, int) and n > 0 for n in entry.input_size)
        assert 0.01 < entry.gflops < 100
        assert set(entry.tags) <= set(cat.TAGS)
        # Guidance picks 1000-class ImageNet heads so predictions are meaningful out of the box.
        assert entry.num_classes == 1000


def test_curated_timm_checkpoints_exist() -> None:
    pretrained = set(timm.list_pretrained())
    all_models = set(timm.list_models())
    for model in cat.CURATED:
        if model.source in ("timm", "builtin"):
            assert cat.base_name(model.arch) in all_models, model.arch
            assert model.arch in pretrained, model.arch


def test_torchvision_alexnet() -> None:
    entry = by_name("AlexNet")
    assert entry.arch == "torchvision/alexnet" and entry.source == "torchvision"
    with torch.device("meta"):
        import torchvision

        model = torchvision.models.alexnet(weights=None)
    assert entry.params == sum(p.numel() for p in model.parameters()) == 61_100_840


def test_find_entry() -> None:
    resnet50 = find_entry("resnet50.a1_in1k")
    assert resnet50 is not None and resnet50.display_name == "ResNet-50"
    assert find_entry("resnet50") is resnet50
    assert find_entry("ResNet-50") is resnet50
    assert find_entry("  resnet-50 ") is resnet50
    assert find_entry("mobilenet v3 large") is find_entry("mobilenetv3_large_100")
    assert find_entry("efficientnet lite0") is find_entry(DEFAULT_ARCH)
    assert find_entry("torchvision/alexnet") is find_entry("alexnet")
    assert find_entry("resnet26d") is None
    assert find_entry("not_a_model") is None


@pytest.mark.parametrize(
    "name",
    ["resnet26d", "resnet26d.bt_in1k", "resnet50", "ResNet-50", "vit_base_patch16_224.augreg_in1k",
     "torchvision/alexnet"],
)
def test_known_architectures(name: str) -> None:
    assert is_known_architecture(name)


@pytest.mark.parametrize("name", ["not_a_model", "", "   ", "resnet50.no_such_tag", "torchvision/not_a_model"])
def test_unknown_architectures(name: str) -> None:
    assert not is_known_architecture(name)


def test_default_is_the_built_in_model_listed_first() -> None:
    entry = find_entry(DEFAULT_ARCH)
    assert entry is not None and entry.display_name == "EfficientNet-Lite0" and entry.source == "builtin"
    assert catalog()[0] is entry or catalog()[0] == entry
    assert cat.BUILTIN_TAG in entry.tags
    assert [e.arch for e in catalog() if "default" in e.tags] == [DEFAULT_ARCH]


def test_guidance_names_refer_to_catalog_entries() -> None:
    names = {m.display_name for m in cat.CURATED}
    assert set(cat.GUIDANCE) <= set(cat.TAGS)
    for tag, tagged in cat.GUIDANCE.items():
        assert set(tagged) <= names, tag


@pytest.mark.parametrize(
    "display_name, expected",
    [
        ("MobileNetV3-Small", {"fastest", "smallest", "mobile/edge", "small datasets"}),
        ("ResNet-18", {"fastest", "smallest", "mobile/edge", "small datasets"}),
        ("ViT-L", {"most accurate", "large datasets"}),
        ("ResNet-101", {"most accurate"}),
        ("ResNet-50", {"balanced", "medium datasets"}),
        ("EfficientNet-B0", {"smallest", "mobile/edge", "balanced", "medium datasets"}),
        ("MobileNetV3-Large", {"mobile/edge"}),
        ("EfficientNet-Lite0", {"built in · offline", "default", "mobile/edge"}),
        ("Swin-B", set()),
    ],
)
def test_guidance_tags(display_name: str, expected: set[str]) -> None:
    assert set(by_name(display_name).tags) == expected
