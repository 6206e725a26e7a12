"""Evaluation numbers checked against hand computations: what the wizard, the CLI and the report show users."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.errors import UserFacingError
from engine.training.metrics import (
    MAX_MISCLASSIFIED,
    ClassMetrics,
    Evaluation,
    Misclassified,
    confusion_matrix,
    evaluate_predictions,
)

LABELS = ("cat", "dog", "bird")
# Seven images; the predicted class is the row's largest probability.
TARGETS = np.array([0, 0, 1, 1, 2, 2, 2])
PROBABILITIES = np.array(
    [
        [0.70, 0.20, 0.10],  # cat  -> cat   right
        [0.30, 0.60, 0.10],  # cat  -> dog   wrong, 0.6 sure
        [0.10, 0.80, 0.10],  # dog  -> dog   right
        [0.20, 0.30, 0.50],  # dog  -> bird  wrong, 0.5 sure
        [0.10, 0.10, 0.80],  # bird -> bird  right
        [0.05, 0.05, 0.90],  # bird -> bird  right
        [0.05, 0.90, 0.05],  # bird -> dog   wrong, 0.9 sure
    ]
)
PATHS = [f"/photos/{i}.jpg" for i in range(7)]


def test_three_classes_match_the_hand_computation():
    ev = evaluate_predictions(LABELS, TARGETS, PROBABILITIES, PATHS)

    # Rows true, columns predicted:
    #          cat dog bird
    #   cat     1   1   0
    #   dog     0   1   1
    #   bird    0   1   2
    assert ev.confusion == ((1, 1, 0), (0, 1, 1), (0, 1, 2))
    assert ev.labels == LABELS
    assert ev.num_images == 7
    assert ev.num_mistakes == 3
    # 4 of 7 right.
    assert ev.accuracy == pytest.approx(4 / 7)
    # Predicted counts (column sums): cat 1, dog 3, bird 3; support (row sums): 2, 2, 3.
    # cat:  precision 1/1, recall 1/2, F1 = 2·1·½ / (1 + ½) = 2/3
    # dog:  precision 1/3, recall 1/2, F1 = 2·⅓·½ / (⅓ + ½) = (1/3) / (5/6) = 2/5
    # bird: precision 2/3, recall 2/3, F1 = 2/3
    expected = [("cat", 1.0, 0.5, 2 / 3, 2), ("dog", 1 / 3, 0.5, 2 / 5, 2), ("bird", 2 / 3, 2 / 3, 2 / 3, 3)]
    for got, (name, precision, recall, f1, support) in zip(ev.per_class, expected):
        assert got.name == name
        assert got.precision == pytest.approx(precision)
        assert got.recall == pytest.approx(recall)
        assert got.f1 == pytest.approx(f1)
        assert got.support == support
    # Macro F1 = (2/3 + 2/5 + 2/3) / 3 = (10/15 + 6/15 + 10/15) / 3 = 26/45
    assert ev.macro_f1 == pytest.approx(26 / 45)
    # Probabilities of the true class: .7 .3 .8 .3 .8 .9 .05; loss = their mean negative natural log.
    expected_loss = -(math.log(0.7) + math.log(0.3) + math.log(0.8) + math.log(0.3) + math.log(0.8)
                      + math.log(0.9) + math.log(0.05)) / 7
    assert ev.loss == pytest.approx(expected_loss)
    # Only 3 classes: every image is in the top 5, so top-5 would say nothing.
    assert ev.top5 is None


def test_mistakes_come_most_confident_first_with_their_paths():
    ev = evaluate_predictions(LABELS, TARGETS, PROBABILITIES, PATHS)

    assert ev.misclassified == (
        Misclassified("/photos/6.jpg", "bird", "dog", pytest.approx(0.9)),
        Misclassified("/photos/1.jpg", "cat", "dog", pytest.approx(0.6)),
        Misclassified("/photos/3.jpg", "dog", "bird", pytest.approx(0.5)),
    )


def test_without_paths_mistakes_are_still_listed():
    ev = evaluate_predictions(LABELS, TARGETS, PROBABILITIES)

    assert [m.path for m in ev.misclassified] == ["", "", ""]
    assert [m.true_label for m in ev.misclassified] == ["bird", "cat", "dog"]


def test_top5_counts_the_true_class_among_the_five_most_likely():
    labels = ("a", "b", "c", "d", "e", "f")
    targets = np.array([0, 1, 5, 4])
    probabilities = np.array(
        [
            [0.50, 0.10, 0.10, 0.10, 0.10, 0.10],  # a: top-1 right, so also top-5
            [0.40, 0.20, 0.10, 0.10, 0.10, 0.10],  # b: top-1 says a (wrong); b ranks 2nd -> in the top 5
            [0.30, 0.25, 0.20, 0.10, 0.10, 0.05],  # f: ranks 6th -> wrong in both
            [0.10, 0.10, 0.10, 0.10, 0.50, 0.10],  # e: top-1 right
        ]
    )
    ev = evaluate_predictions(labels, targets, probabilities)

    assert ev.accuracy == pytest.approx(2 / 4)
    assert ev.top5 == pytest.approx(3 / 4)
    assert ev.summary_line() == f"accuracy: 0.500 · loss: {ev.loss:.3f} · top-5: 0.750"


def test_summary_line_leaves_out_top5_below_five_classes():
    ev = evaluate_predictions(LABELS, TARGETS, PROBABILITIES)

    # 4/7 = 0.5714...
    assert ev.summary_line() == f"accuracy: 0.571 · loss: {ev.loss:.3f}"
    assert "top-5" not in ev.summary_line()


@pytest.mark.filterwarnings("error")
def test_undefined_precision_and_recall_are_zero_without_warnings():
    # "bird" is never predicted (precision 0/0) and has no images (recall 0/0).
    targets = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.7, 0.2, 0.1]])
    ev = evaluate_predictions(LABELS, targets, probabilities)

    assert ev.per_class[2] == ClassMetrics("bird", 0.0, 0.0, 0.0, 0)
    # cat: predicted 3 times, 2 right: precision 2/3, recall 2/2 -> F1 = 2·⅔·1 / (⅔ + 1) = 4/5
    # dog: predicted once, right: precision 1, recall 1/2 -> F1 = 2/3
    assert ev.per_class[0].f1 == pytest.approx(4 / 5)
    assert ev.per_class[1].f1 == pytest.approx(2 / 3)
    # "bird" is absent from targets and predictions, so it does not drag the macro average down.
    assert ev.macro_f1 == pytest.approx((4 / 5 + 2 / 3) / 2)


@pytest.mark.filterwarnings("error")
def test_a_class_predicted_but_never_true_counts_against_the_macro_average():
    # bird gets one prediction but has no images: precision 0/1 = 0, recall undefined -> 0, F1 0.
    targets = np.array([0, 1])
    probabilities = np.array([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]])
    ev = evaluate_predictions(LABELS, targets, probabilities)

    assert ev.per_class[2] == ClassMetrics("bird", 0.0, 0.0, 0.0, 0)
    # cat F1 1, dog F1 0 (never predicted), bird F1 0 -> (1 + 0 + 0) / 3
    assert ev.macro_f1 == pytest.approx(1 / 3)


def test_a_certain_wrong_answer_gives_a_large_but_finite_loss():
    ev = evaluate_predictions(("cat", "dog"), np.array([0]), np.array([[0.0, 1.0]]))

    assert ev.loss == pytest.approx(-math.log(1e-12))


def test_at_most_100_mistakes_are_kept_the_most_confident():
    rng = np.random.default_rng(0)
    wrong_share = rng.uniform(0.5, 1.0, size=150)  # every image is a "cat" predicted "dog"
    probabilities = np.stack([1 - wrong_share, wrong_share], axis=1)
    ev = evaluate_predictions(("cat", "dog"), np.zeros(150, dtype=np.int64), probabilities)

    confidences = [m.confidence for m in ev.misclassified]
    assert len(confidences) == MAX_MISCLASSIFIED
    assert ev.num_mistakes == 150
    assert confidences == sorted(confidences, reverse=True)
    assert confidences[0] == pytest.approx(wrong_share.max())
    assert confidences[-1] == pytest.approx(np.sort(wrong_share)[::-1][MAX_MISCLASSIFIED - 1])


def test_round_trip_through_json():
    for ev in (
        evaluate_predictions(LABELS, TARGETS, PROBABILITIES, PATHS),
        evaluate_predictions(  # five classes: top-5 is a number, not None
            ("a", "b", "c", "d", "e"), np.array([0, 3, 4, 1]), np.random.default_rng(1).dirichlet(np.ones(5), size=4)
        ),
    ):
        again = Evaluation.from_dict(json.loads(json.dumps(ev.to_dict())))
        assert again == ev
    assert again.top5 is not None


def test_confusion_matrix_counts_pairs():
    matrix = confusion_matrix(np.array([0, 1, 1, 2, 2, 2]), np.array([0, 2, 1, 2, 2, 0]), 4)

    assert matrix.dtype == np.int64
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    ("targets", "probabilities", "paths", "message"),
    [
        (np.array([0, 1]), np.array([0.5, 0.5]), (), "2-D"),
        (np.array([0, 1]), np.full((2, 2), 0.5), (), "2 columns but there are 3 labels"),
        (np.array([[0, 1]]), np.full((2, 3), 1 / 3), (), "1-D"),
        (np.array([0, 1, 2]), np.full((2, 3), 1 / 3), (), "3 targets but 2 rows"),
        (np.array([0, 1]), np.full((2, 3), 1 / 3), ("one.jpg",), "1 paths for 2 images"),
        (np.array([0, 3]), np.full((2, 3), 1 / 3), (), "0..2"),
        (np.array([0.0, 1.0]), np.full((2, 3), 1 / 3), (), "integer"),
        (np.array([0, 1]), np.full((2, 3), 2.0), (), "sum to 1"),
        (np.array([0, 1]), np.full((2, 3), np.nan), (), "NaN"),
    ],
)
def test_inconsistent_inputs_are_refused_clearly(targets, probabilities, paths, message):
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(LABELS, targets, probabilities, paths)


def test_no_images_is_a_user_facing_error():
    with pytest.raises(UserFacingError) as caught:
        evaluate_predictions(LABELS, np.zeros(0, dtype=np.int64), np.zeros((0, 3)))

    assert caught.value.message == "There are no images to evaluate."
    assert caught.value.hint
