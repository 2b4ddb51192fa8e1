import math

import numpy as np
import pytest
from click.testing import CliRunner

from sld.benchmark import TaskScore
from sld.cli import main
from sld.seed_agreement import AGREEMENT, SeedAgreement, markdown_seeds, prediction_spread, run_seeds
from tests.sld.test_side_by_side import _curve_csv


def _score(law, r2=0.9, *, returned=True, log_rmse=None):
    return TaskScore(r2=r2, nmse=0.1, nmae=0.1, n_params=2, law=law, seconds=0.1, law_returned=returned,
                     log_rmse=log_rmse)


def test_spread_is_the_largest_pair_in_units_of_each_targets_range():
    observed = np.array([[0.0, 10.0], [1.0, 30.0]])  # ranges 1 and 20
    same = np.array([[0.0, 10.0], [1.0, 30.0]])
    moved = same + np.array([0.1, 2.0])  # 10% of both ranges
    assert prediction_spread([same, same], observed) == 0.0
    assert prediction_spread([same, same, moved], observed) == pytest.approx(0.1)
    assert prediction_spread([same, same * np.nan], observed) == math.inf


def test_seeds_that_choose_other_laws_agree_only_when_their_predictions_do():
    observed = np.array([[1.0], [2.0], [3.0]])
    laws = {
        ("same", 0): "a", ("same", 1): "a",
        ("close", 0): "a", ("close", 1): "b",
        ("apart", 0): "a", ("apart", 1): "b",
        ("none", 0): "a", ("none", 1): "",
    }
    shift = {"close": 0.5 * AGREEMENT * 2.0, "apart": 4 * AGREEMENT * 2.0}

    def discover(name, seed):
        if name == "none" and seed == 1:
            return _score("", -math.inf, returned=False), None, observed
        predicted = observed + (shift.get(name, 0.0) if seed == 1 else 0.0)
        return _score(laws[name, seed], r2=0.9 - 0.1 * seed), predicted, observed

    result = run_seeds("sldbench", discover, ["same", "close", "apart", "none"], [0, 1])
    verdicts = {name: (task.same_law, task.agree) for name, task in result.tasks.items()}
    assert verdicts == {"same": (True, True), "close": (False, True), "apart": (False, False), "none": (False, False)}
    assert result.tasks["none"].prediction_spread is None
    assert result.same_law == 1 and result.agree == 2
    assert result.mean_r2 == {"0": pytest.approx(0.9), "1": pytest.approx((0.8 * 3 - 1) / 4)}
    again = SeedAgreement.model_validate_json(result.model_dump_json())
    table = markdown_seeds(again)
    assert "| apart | 0.9000 | 0.8000 | no |" in table and "| none | 0.9000 | no law | no |" in table
    assert "| **mean** |" in table and "1 of 4 | | 2 of 4 |" in table


def test_bench_seeds_runs_sld_once_per_seed_on_the_rnsl_suite(tmp_path):
    out = tmp_path / "seeds.json"
    args = ["bench", "--suite", "rnsl", "--rnsl", str(_curve_csv(tmp_path / "b")), "--method", "sld",
            "--seeds", "0,1", "--backend", "none", "--max-candidates", "3", "--run-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = SeedAgreement.model_validate_json(out.read_text())
    assert data.seeds == [0, 1] and list(data.tasks) == ["nmt_a", "nmt_b"]
    assert set(data.mean_log_rmse) == {"0", "1"}
    for task in data.tasks.values():
        assert set(task.scores) == {"0", "1"} and all(s.log_rmse is not None for s in task.scores.values())
        assert task.prediction_spread is not None
    assert (tmp_path / "runs" / "seed1" / "nmt_a" / "candidates.jsonl").exists()
    assert "same law" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "human", "--seeds", "0,1"], "use it with --method sld"),
        (["--method", "sld", "--seeds", "0,x"], "give comma-separated integers"),
        (["--method", "sld", "--seeds", "3,3"], "at least two distinct seeds"),
        (["--method", "sld", "--seeds", "0,1", "--report", "out"], "drop --report with --seeds"),
    ],
)
def test_bench_seeds_rejects_bad_values_with_the_fix(args, message):
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code == 2 and message in result.output
