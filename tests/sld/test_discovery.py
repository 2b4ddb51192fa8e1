import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sld.discovery import RunDirectory, discover_task
from sld.search import SplitArrays
from sld.search.engine import EngineConfig
from sld.tasks import generic_task

TASK = generic_task(name="toy", features=["N", "D"], targets=["loss"], max_params=5, extrapolation_axis="D")
CONFIG = EngineConfig(budget_s=120, backend="none", evolution_rounds=0, n_starts=2)


def _rows(D: np.ndarray) -> SplitArrays:
    N, D = np.meshgrid(np.geomspace(1e7, 1e9, 4), D)
    X = np.column_stack([N.ravel(), D.ravel()])
    loss = 1.69 + 406.4 / X[:, 0] ** 0.34 + 410.7 / X[:, 1] ** 0.28
    return SplitArrays(X=X, Y=loss[:, None], groups=np.full(len(X), "all"))


TRAIN = _rows(np.geomspace(1e9, 1e11, 5))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.1, 10.0), st.floats(1e11, 1e13))
def test_test_rows_never_influence_any_choice(scale, largest):
    reference = discover_task(TASK, TRAIN, _rows(np.array([2e11])), CONFIG)
    test = _rows(np.array([largest]))
    perturbed = SplitArrays(X=test.X, Y=test.Y * scale, groups=test.groups)
    other = discover_task(TASK, TRAIN, perturbed, CONFIG)
    assert [c.expression for c in other.outcomes[0].state.candidates] == [
        c.expression for c in reference.outcomes[0].state.candidates
    ]
    assert other.expression() == reference.expression()
    assert other.constants() == reference.constants()


def test_run_directory_keeps_every_candidate_and_the_result(tmp_path):
    discovery = discover_task(TASK, TRAIN, _rows(np.array([2e11])), CONFIG, run_dir=tmp_path / "run")
    lines = (tmp_path / "run" / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == discovery.candidates_evaluated()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["law"]["expression"] == discovery.expression()
    assert result["test_r2"] > 0.99
    states = RunDirectory(tmp_path / "run").load_states()
    assert [c.expression for c in states["loss"].candidates] == [
        c.expression for c in discovery.outcomes[0].state.candidates
    ]
