import numpy as np
import pytest
from numpy.testing import assert_allclose

from sld.search.batched_fits import _UPDATE_CODES, _UPDATE_SETTINGS, REASONS
from sld.search.lm_iteration import damped_steps, normal_equations, update_after_trials


def _state(now: list[float]) -> tuple[np.ndarray, ...]:
    b = len(now)
    return (
        np.array(now, dtype=np.float64),
        np.zeros((b, 2)),
        np.full(b, 1e-3),
        np.full(b, 2.0),
        np.array(now, dtype=np.float64) * 10.0,
    )


def _update(state, new_cost, trial, *, predicted=None, small=None, stall=False, dominated=None):
    b = len(new_cost)
    return update_after_trials(
        state,
        np.array(new_cost, dtype=np.float64),
        np.array(trial, dtype=np.float64),
        np.ones(b) if predicted is None else np.array(predicted, dtype=np.float64),
        np.zeros(b, dtype=bool) if small is None else np.array(small),
        settings=_UPDATE_SETTINGS,
        codes=_UPDATE_CODES,
        stall_check=stall,
        dominated=dominated,
    )


def test_an_accepted_trial_moves_and_loosens_the_damping_and_a_rejected_one_tightens_it_ever_faster():
    state = _state([1.0, 1.0])
    now, z, damping, growth, _ = state
    accepted, done = _update(state, [0.5, 2.0], [[0.1, 0.2], [0.3, 0.4]], predicted=[0.5, 0.5])
    assert accepted.tolist() == [True, False] and done.tolist() == [0, 0]
    assert_allclose(z, [[0.1, 0.2], [0.0, 0.0]])
    assert_allclose(now, [0.5, 1.0])
    # Gain 1 (the model predicted the decrease exactly): the damping drops by the largest factor, 1/3.
    assert_allclose(damping, [1e-3 / 3.0, 2e-3])
    assert_allclose(growth, [2.0, 4.0])
    _update(state, [0.5, 2.0], [[0.1, 0.2], [0.3, 0.4]])
    assert_allclose(damping[1], 8e-3)  # rejected twice: x2, then x4


def test_the_first_stopping_test_that_holds_names_the_reason():
    state = _state([1.0, 1.0, 1.0, 1.0])
    state[2][3] = 1e12  # this one's damping overflows when its trial is rejected
    trial = [[0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]
    # 0: small gradient (and an unmoved step); 1: cost change below ftol; 2: moving on; 3: damping overflow.
    accepted, done = _update(state, [0.5, 1.0 - 1e-12, 0.5, 2.0], trial, small=[True, False, False, False])
    names = [REASONS[code] if code else "" for code in done]
    assert names == ["gradient below gtol", "relative cost change below ftol", "", REASONS[_UPDATE_CODES[3]]]
    assert accepted.tolist() == [True, True, True, False]


def test_stall_and_dominated_tests_run_only_when_asked():
    state = _state([1.0, 1.0, 50.0])
    state[4][:] = [1.0, 10.0, 100.0]  # checkpoints: the first has not fallen since its last stall test
    cost = np.array([1.0, 1.0, 50.0, 0.5])  # problem 3 (finished) is the best start of fit 0
    fit_of = np.array([0, 1, 0, 0])
    trial = np.ones((3, 2))
    _, done = _update(state, [2.0, 2.0, 60.0], trial)
    assert done.tolist() == [0, 0, 0]
    _, done = _update(state, [2.0, 2.0, 60.0], trial, stall=True, dominated=(cost, np.arange(3), fit_of))
    stalled, dominated = (REASONS[int(code)] for code in _UPDATE_CODES[4:6])
    # 0 has not fallen since its checkpoint; 1 fell from 10; 2 fell from 100 but is 100x behind fit 0's best (0.5).
    assert [REASONS[c] if c else "" for c in done] == [stalled, "", dominated]
    assert_allclose(state[4], [1.0, 1.0, 50.0])  # the checkpoints moved to the current costs
    assert_allclose(cost[:3], [1.0, 1.0, 50.0])  # the live problems' costs were written in for the best of each fit
    _, done = _update(state, [2.0, 2.0, 60.0], trial, stall=True, dominated=(cost, np.arange(3), fit_of))
    assert [REASONS[c] if c else "" for c in done] == [stalled, stalled, stalled]  # stalled is tested first


def test_a_held_constant_does_not_move_and_the_step_solves_the_damped_system():
    normal = np.array([[[4.0, 1.0], [1.0, 3.0]]])
    gradient = np.array([[1.0, -2.0]])
    z, lower, upper = np.array([[0.0, 0.0]]), np.array([0.0, -1.0]), np.array([1.0, 1.0])
    # Constant 0 sits on its lower bound and its descent (-gradient < 0) leaves the box: held.
    step, small, predicted, broken, _, rhs, damped = damped_steps(
        normal, gradient, np.ones(1), z, lower, upper, np.array([0.5])
    )
    assert not broken[0] and not small[0]
    assert step[0, 0] == 0.0
    assert_allclose(step[0, 1], 2.0 / (3.0 + 0.5 * 3.0))
    assert_allclose(damped[0], [0.5 * 4.0, 0.5 * 3.0])
    assert_allclose(predicted[0], 0.5 * step[0, 1] * (damped[0, 1] * step[0, 1] + rhs[0, 1]))


def _arrow_system(rng, b, n_coupled, block, n_blocks, n=200):
    """Normal equations of problems whose rows see the coupled constants and one block's own constants."""
    q = n_coupled + block * n_blocks
    block_of_row = rng.integers(0, n_blocks, size=n)
    mask = np.zeros((n, q), dtype=bool)
    mask[:, :n_coupled] = True
    for row, group in enumerate(block_of_row):
        mask[row, n_coupled + group * block : n_coupled + (group + 1) * block] = True
    jac = rng.standard_normal((b, n, q)) * mask
    return np.einsum("bni,bnj->bij", jac, jac), rng.standard_normal((b, q)), q


def test_the_block_arrow_step_equals_the_dense_step_with_held_constants_and_a_broken_problem():
    rng = np.random.default_rng(4)
    b, n_coupled, block, n_blocks = 4, 2, 3, 6
    normal, gradient, q = _arrow_system(rng, b, n_coupled, block, n_blocks)
    z, lower, upper = np.zeros((b, q)), np.full(q, -1.0), np.full(q, 1.0)
    z[1, 0], gradient[1, 0] = -1.0, 2.0  # problem 1 holds a coupled constant on its lower bound
    z[2, q - 1], gradient[2, q - 1] = 1.0, -2.0  # problem 2 holds the last block's last constant on its upper bound
    normal[3, n_coupled, n_coupled] = -5.0  # problem 3's first block is not positive definite: its Cholesky breaks
    damping = np.full(b, 1e-2)
    dense = damped_steps(normal, gradient, np.ones(b), z, lower, upper, damping)
    arrow = damped_steps(normal, gradient, np.ones(b), z, lower, upper, damping, (n_coupled, block))
    assert dense[3].tolist() == arrow[3].tolist() == [False, False, False, True]
    assert_allclose(arrow[0][:3], dense[0][:3], rtol=1e-10, atol=1e-13)
    assert_allclose(arrow[2][:3], dense[2][:3], rtol=1e-10)
    assert arrow[0][1, 0] == 0.0 and arrow[0][2, q - 1] == 0.0
    # The broken problem's damped system comes back dense, for the LAPACK fallback, the same either way.
    assert_allclose(arrow[4][3], dense[4][3])
    assert_allclose(arrow[4][3], normal[3] + np.diag(arrow[6][3]))


def test_the_step_refuses_an_arrow_that_does_not_split_the_constants():
    normal, gradient, q = _arrow_system(np.random.default_rng(5), 1, 1, 2, 3)
    with pytest.raises(ValueError, match="does not split 7 constants"):
        damped_steps(normal, gradient, np.ones(1), np.zeros((1, q)), -np.ones(q), np.ones(q), np.ones(1), (2, 2))


def test_the_joint_normal_equations_equal_the_dense_products_of_the_full_jacobian():
    from sld.search.lm_iteration import joint_normal_equations

    rng = np.random.default_rng(3)
    n_shared, n_own, n_groups, n, b = 2, 3, 4, 30, 5
    group_of_row = rng.integers(0, n_groups, size=n)
    jac = rng.standard_normal((n_shared + n_own, b, n))
    jac[0, 1, 4] = 0.0  # zeros are skipped, not mis-placed
    residual = rng.standard_normal((b, n))
    normal, gradient, squares = joint_normal_equations(jac, residual, group_of_row, n_shared, n_groups)
    size = n_shared + n_groups * n_own
    for p in range(b):
        dense = np.zeros((n, size))  # the full Jacobian: shared columns, then each group's own block
        dense[:, :n_shared] = jac[:n_shared, p].T
        for row, group in enumerate(group_of_row):
            dense[row, n_shared + group * n_own : n_shared + (group + 1) * n_own] = jac[n_shared:, p, row]
        assert_allclose(normal[p], dense.T @ dense, rtol=1e-12, atol=1e-12)
        assert_allclose(gradient[p], dense.T @ residual[p], rtol=1e-12, atol=1e-12)
    assert_allclose(squares, np.einsum("bn,bn->b", residual, residual))


def test_the_normal_equations_of_independent_problems_equal_numpys_products():
    rng = np.random.default_rng(3)
    jac = rng.normal(size=(4, 50, 12))  # the law's layout: constants, problems, rows
    residual = rng.normal(size=(50, 12))
    normal, gradient, squares = normal_equations(jac[:, ::2], residual[::2])  # a strided view, as subsets give
    stacked = jac[:, ::2].transpose(1, 0, 2)
    assert_allclose(normal, stacked @ stacked.transpose(0, 2, 1), rtol=1e-12)
    assert_allclose(gradient, (stacked @ residual[::2, :, None])[:, :, 0], rtol=1e-12)
    assert_allclose(squares, np.sum(residual[::2] ** 2, axis=1), rtol=1e-12)
