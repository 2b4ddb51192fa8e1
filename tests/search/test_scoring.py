import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sld.search import FitConfig, SplitArrays, clip_r2, fitting, parse_law, score_predictions, score_split


def test_official_scores_on_a_hand_computed_example():
    # errors (0.5, 0, -0.5, 0): MSE 0.125; Var(y) 1.25; mean|y - 2.5| = 1.0; mean|error| = 0.25
    scores = score_predictions([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.0])
    assert not scores.failed
    assert_allclose([scores.nmse, scores.r2, scores.nmae], [0.1, 0.9, 0.25])


def test_multi_target_scores_average_over_targets():
    # second target: errors (0, 0, 0, -2): MSE 1, Var 5 -> NMSE 0.2; mean|error| 0.5, mean|y - 5| 2 -> NMAE 0.25
    y = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.0]])
    pred = np.array([[1.5, 2.0], [2.0, 4.0], [2.5, 6.0], [4.0, 10.0]])
    scores = score_predictions(y, pred)
    assert_allclose([scores.nmse, scores.r2, scores.nmae], [0.15, 0.85, 0.25])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_predictions_fail(bad):
    scores = score_predictions([1.0, 2.0, 3.0], [1.0, bad, 3.0])
    assert scores.failed
    assert scores.r2 == -math.inf
    assert "1 of 3 predictions are not finite" in scores.message


def test_unscorable_inputs():
    assert score_predictions([2.0, 2.0], [2.0, 2.0]).failed
    assert score_predictions(np.empty(0), np.empty(0)).failed
    assert score_predictions([0.0, 1.0], [1e200, -1e200]).failed
    with pytest.raises(ValueError, match=r"y_true has shape \(2,\) and y_pred \(3,\)"):
        score_predictions([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="non-finite"):
        score_predictions([1.0, np.nan], [1.0, 2.0])


def test_clip_r2_matches_the_leaderboard():
    assert [clip_r2(v) for v in (-math.inf, -5.0, math.nan, 0.3, 1.0)] == [-1.0, -1.0, -1.0, 0.3, 1.0]


def _linear_split():
    truth = {"a": (2.0, 1.0), "b": (-1.0, 5.0)}
    x_train = np.tile(np.arange(1.0, 7.0), 2)
    g_train = np.repeat(["a", "b"], 6)
    x_test = np.array([10.0, 8.0, 9.0, 7.0])
    g_test = np.array(["b", "a", "a", "b"])

    def target(x, g):
        return np.array([truth[k][0] * v + truth[k][1] for v, k in zip(x, g, strict=True)])

    train = SplitArrays(x_train[:, None], target(x_train, g_train), g_train)
    test = SplitArrays(x_test[:, None], target(x_test, g_test), g_test)
    return train, test


def test_score_split_fits_per_group_and_aligns_predictions_with_test_rows():
    train, test = _linear_split()
    evaluation = score_split([parse_law("m*x + c", ["x"])], train, test)
    assert not evaluation.scores.failed
    assert_allclose(evaluation.scores.r2, 1.0)
    assert evaluation.predictions.shape == (4, 1)
    assert_allclose(evaluation.predictions[:, 0], test.Y[:, 0], rtol=1e-9)
    assert_allclose(evaluation.fits[0].fits["b"].params, [-1.0, 5.0], rtol=1e-9)


def test_score_split_with_two_targets():
    def two(split):
        return SplitArrays(split.X, np.column_stack([split.Y[:, 0], 3 * split.X[:, 0]]), split.groups)

    train, test = _linear_split()
    laws = [parse_law("m*x + c", ["x"]), parse_law("k*x", ["x"])]
    evaluation = score_split(laws, two(train), two(test))
    assert evaluation.predictions.shape == (4, 2)
    assert_allclose(evaluation.scores.r2, 1.0)
    with pytest.raises(ValueError, match="one law per target"):
        score_split(laws[:1], two(train), two(test))


def test_a_test_group_without_train_rows_fails_with_its_name():
    train, test = _linear_split()
    test = SplitArrays(test.X, test.Y, np.array(["b", "a", "c", "b"]))
    evaluation = score_split([parse_law("m*x + c", ["x"])], train, test)
    assert evaluation.scores.failed
    assert evaluation.scores.r2 == -math.inf
    assert "test groups without train rows: c" in evaluation.scores.message
    assert np.isnan(evaluation.predictions[2, 0])


def test_non_finite_test_predictions_fail():
    train, test = _linear_split()
    test = SplitArrays(-test.X, test.Y, test.groups)
    evaluation = score_split([parse_law("m*sqrt(x) + c", ["x"])], train, test)
    assert evaluation.scores.failed
    assert "not finite" in evaluation.scores.message


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["g0", "g1", "g2"]), min_size=6, max_size=30),
    st.lists(st.sampled_from(["g0", "g1", "g2"]), min_size=1, max_size=10),
    st.integers(0, 2**16),
)
def test_no_test_row_ever_reaches_the_fitter(train_groups, test_groups, seed):
    rng = np.random.default_rng(seed)
    n_train, n_test = len(train_groups), len(test_groups)
    # Train values lie in [1, 2); every test value is a unique sentinel far outside it.
    train = SplitArrays(1 + rng.random((n_train, 2)), 1 + rng.random(n_train), np.array(train_groups))
    sentinels = 1000.0 + np.arange(3 * n_test, dtype=float)
    test = SplitArrays(sentinels[: 2 * n_test].reshape(n_test, 2), sentinels[2 * n_test :], np.array(test_groups))
    seen = []
    real_fit = fitting.fit_datasets  # every fit goes through it with the batched solver

    def spy(law, datasets, starts, **kwargs):
        seen.extend((np.array(X), np.array(y)) for X, y in datasets)
        return real_fit(law, datasets, starts, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "fit_datasets", spy)
        score_split([parse_law("a*x + b*z", ["x", "z"])], train, test, config=FitConfig(n_starts=1))
    assert seen or not set(test_groups) & set(train_groups)
    for X, y in seen:
        assert not np.isin(X, sentinels).any()
        assert not np.isin(y, sentinels).any()
        assert X.max() < 2 and y.max() < 2
