"""Where the model looked: the heat map points at the part of a real photo the built-in model's answer depends on."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import Cancelled
from engine.events import CancelToken, Progress
from engine.explain import POSITIONS, explain, explain_classes, heat_map, hiding_places
from engine.models import load_model
from engine.predict import Classifier
from engine.specs import builtin_model_spec


@pytest.fixture(scope="module")
def builtin_classifier() -> Classifier:
    return Classifier(load_model(builtin_model_spec()))


@pytest.fixture(scope="module")
def cat_on_the_left(photo_arrays) -> Image.Image:
    """A grey picture whose centre square (what the model sees) has a real cat in its left half, nothing in its
    right."""
    canvas = Image.new("RGB", (900, 450), (128, 128, 128))
    canvas.paste(Image.fromarray(photo_arrays["chelsea"]).resize((450, 300)), (0, 75))
    return canvas


def test_the_heat_lies_on_the_cat_and_hiding_it_lowers_the_cat_class(builtin_classifier, cat_on_the_left):
    events = []
    explanation = explain(builtin_classifier, cat_on_the_left, on_event=events.append)

    top = builtin_classifier.predict_images([cat_on_the_left], topk=1)[0][0]
    assert (explanation.label, explanation.class_index) == (top.label, top.index)
    assert "cat" in explanation.label
    assert explanation.prob == pytest.approx(top.prob, abs=1e-6)
    assert explanation.lowest_prob < explanation.prob - 0.1

    heat = explanation.heat
    assert heat.shape == explanation.seen.shape[:2] == (224, 224) and heat.max() == pytest.approx(1.0)
    assert heat[:, :112].sum() > 4 * heat[:, 112:].sum()  # the cat fills the left half of what the model sees
    seen_grey = explanation.seen[:, 150:].reshape(-1, 3)
    assert np.abs(seen_grey.astype(int) - 128).max() <= 2  # "seen" is the centre crop the model was given

    overlay = explanation.overlay()
    assert overlay.shape == (224, 224, 3) and overlay.dtype == np.uint8
    hottest = np.unravel_index(np.argmax(heat), heat.shape)
    assert not np.array_equal(overlay[hottest], explanation.seen[hottest])  # coloured where it matters
    coldest = np.unravel_index(np.argmin(heat), heat.shape)
    assert np.abs(overlay[coldest].astype(int) - explanation.seen[coldest]).max() <= 1  # the photo as it is
    assert explanation.label in explanation.describe() and f"{explanation.prob:.1%}" in explanation.describe()

    passes = [e for e in events if isinstance(e, Progress)]
    assert passes[-1].done == passes[-1].total == POSITIONS * POSITIONS


def test_any_class_can_be_explained_not_only_the_top_one(builtin_classifier, cat_on_the_left):
    second = builtin_classifier.predict_images([cat_on_the_left], topk=2)[0][1]
    explanation = explain(builtin_classifier, cat_on_the_left, class_index=second.index)
    assert (explanation.label, explanation.class_index) == (second.label, second.index)
    assert explanation.prob == pytest.approx(second.prob, abs=1e-6)


def test_several_classes_from_one_set_of_passes_are_each_as_explained_alone(builtin_classifier, cat_on_the_left):
    top = builtin_classifier.predict_images([cat_on_the_left], topk=3)[0]
    events = []
    together = explain_classes(builtin_classifier, cat_on_the_left, [t.index for t in top], on_event=events.append)
    assert events[-1].done == events[-1].total == POSITIONS**2  # 49 passes for all three, not 3 x 49
    for alone, shared in zip((explain(builtin_classifier, cat_on_the_left, t.index) for t in top), together):
        assert (shared.label, shared.class_index) == (alone.label, alone.class_index)
        assert shared.prob == pytest.approx(alone.prob, abs=1e-6)
        assert shared.lowest_prob == pytest.approx(alone.lowest_prob, abs=1e-6)
        assert np.abs(shared.heat - alone.heat).max() < 1e-5 and np.array_equal(shared.seen, alone.seen)


def test_cancelling_stops_before_the_passes(builtin_classifier, cat_on_the_left):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        explain(builtin_classifier, cat_on_the_left, cancel=cancel)


def test_the_hiding_places_cover_every_pixel_from_edge_to_edge():
    places = hiding_places(224, 240)
    assert len(places) == POSITIONS * POSITIONS
    covered = np.zeros((224, 240), bool)
    for top, left, bottom, right in places:
        covered[top:bottom, left:right] = True
        assert (bottom - top, right - left) == (56, 60)
    assert covered.all()


def test_drops_too_small_to_matter_give_no_heat_rather_than_noise_scaled_up():
    places = hiding_places(224, 224)
    tiny = np.linspace(-0.001, 0.005, len(places), dtype=np.float32)  # at most 0.5 % of a 90 % probability
    assert not heat_map(places, tiny, 224, 224, prob=0.9).any()
    one_matters = np.zeros(len(places), np.float32)
    one_matters[0] = 0.5  # the top-left square
    heat = heat_map(places, one_matters, 224, 224, prob=0.9)
    assert heat.max() == pytest.approx(1.0) and heat[:56, :56].mean() > 10 * heat[112:, 112:].mean()
