import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sld.agent.run import run_agent
from sld.agent.rundir import RunDirectory
from sld.agent.state import AgentConfig
from sld.search import SplitArrays
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy
from sld.tasks import generic_task

TASK = generic_task(name="toy", features=["N", "D"], targets=["loss"], max_params=5, extrapolation_axis="D")
CONFIG = AgentConfig(engine=EngineConfig(backend="none", evolution_rounds=0, n_starts=2), stop=StopPolicy(budget_s=120))


def _rows(D: np.ndarray) -> SplitArrays:
    N, D = np.meshgrid(np.geomspace(1e7, 1e9, 4), D)
    X = np.column_stack([N.ravel(), D.ravel()])
    loss = 1.69 + 406.4 / X[:, 0] ** 0.34 + 410.7 / X[:, 1] ** 0.28
    return SplitArrays(X=X, Y=loss[:, None], groups=np.full(len(X), "all"))


TRAIN = _rows(np.geomspace(1e9, 1e11, 5))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.1, 10.0), st.floats(1e11, 1e13))
def test_test_rows_never_influence_any_choice(scale, largest):
    reference = run_agent(TASK, TRAIN, _rows(np.array([2e11])), CONFIG)
    test = _rows(np.array([largest]))
    perturbed = SplitArrays(X=test.X, Y=test.Y * scale, groups=test.groups)
    other = run_agent(TASK, TRAIN, perturbed, CONFIG)
    assert [c.expression for c in other.outcomes[0].state.candidates] == [
        c.expression for c in reference.outcomes[0].state.candidates
    ]
    assert other.expression() == reference.expression()
    assert other.constants() == reference.constants()


def test_run_directory_keeps_every_candidate_and_the_result(tmp_path):
    discovery = run_agent(TASK, TRAIN, _rows(np.array([2e11])), CONFIG, run_dir=tmp_path / "run")
    lines = (tmp_path / "run" / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == discovery.candidates_evaluated()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["law"]["expression"] == discovery.expression()
    assert result["test_r2"] > 0.99
    logged = RunDirectory(tmp_path / "run").read_candidates()
    assert [line.expression for line in logged] == [c.expression for c in discovery.outcomes[0].state.candidates]
    assert [line.candidate() for line in logged] == discovery.outcomes[0].state.candidates
    config = RunDirectory(tmp_path / "run").read_config()
    assert config.stop["budget_s"] == 120 and config.task["name"] == "toy" and config.data is not None
    # The near-ties' band beyond the data travels from finalize to result.json (no warning: a law validated).
    band = discovery.outcomes[0].state.band
    assert band is not None and result["uncertainty"]["loss"] == json.loads(json.dumps(band.as_dict()))
    assert result["warnings"] == {} and discovery.expression() in result["uncertainty"]["loss"]["laws"]
    assert RunDirectory(tmp_path / "run").read_result().uncertainty["loss"]["near_ties"] == len(band.laws)


def test_every_reader_skips_a_line_cut_by_a_kill(tmp_path):
    run_agent(TASK, TRAIN, _rows(np.array([2e11])), CONFIG, run_dir=tmp_path / "run")
    directory = RunDirectory(tmp_path / "run")
    whole = directory.read_candidates()
    with directory.candidates_path.open("a") as handle:
        handle.write('{"target": "loss", "expression": "E + A * N**(-al')  # the kill came mid-line
    assert directory.read_candidates() == whole
    from sld.report.data import load_run

    assert len(load_run(tmp_path / "run").records) == len(whole)
