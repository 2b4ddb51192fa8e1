import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sld.agent.state import AgentConfig
from sld.benchmark import TaskScore, score_sld_split
from sld.cli import main
from sld.corpus import load_rnsl
from sld.corpus.rnsl import RNSL_FILE
from sld.rnsl_bench import curve_splits, rnsl_task, score_peer_curve
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy
from sld.side_by_side import BenchComparison, compare_task, markdown_side_by_side, summarize


def _score(log_rmse=None, r2=0.5, *, returned=True):
    return TaskScore(
        r2=r2, nmse=0.1, nmae=0.1, n_params=3, law="x", seconds=0.1, log_rmse=log_rmse, law_returned=returned
    )


def test_wins_follow_the_paper_truncation_and_a_missing_score_counts_as_one():
    scores = {"sld": _score(0.0213), "m2": _score(0.0219), "m4": _score(0.0305), "m1": _score(None, returned=False)}
    task = compare_task(scores, "log_rmse")
    assert task.winners == ["sld", "m2"]  # both truncate to 0.021
    assert task.best_peer == "m2" and task.sld_beats_best_peer is True
    other = compare_task(
        {"sld": _score(None, -math.inf, returned=False), "m2": _score(0.7), "m4": _score(0.5), "m1": _score(0.9)},
        "log_rmse",
    )
    assert other.sld_beats_best_peer is False
    summary = summarize({"a": task, "b": other}, ["sld", "m2", "m4", "m1"], "log_rmse")
    assert summary["sld"].wins == 0.5 and summary["m2"].wins == 0.5 and summary["m4"].wins == 1.0
    assert summary["sld"].mean_log_rmse == pytest.approx((0.0213 + 1.0) / 2)
    assert summary["sld"].laws_returned == 1 and summary["sld"].beats_best_peer == 1
    assert summary["m1"].mean_log_rmse == pytest.approx(0.95) and summary["m1"].beats_best_peer is None


def test_r2_suite_ranks_higher_first_and_the_json_reads_back():
    task = compare_task({"human": _score(r2=0.91), "sld": _score(r2=-math.inf, returned=False)}, "r2")
    assert task.winners == ["human"] and task.sld_beats_best_peer is False
    undefined = compare_task({"human": _score(r2=math.nan), "sld": _score(r2=math.nan)}, "r2")
    tasks = {"t": task, "u": undefined}
    result = BenchComparison(
        suite="sldbench",
        metric="r2",
        methods=["human", "sld"],
        tasks=tasks,
        summary=summarize(tasks, ["human", "sld"], "r2"),
    )
    again = BenchComparison.model_validate_json(result.model_dump_json())
    assert again.tasks["t"].scores["sld"].r2 == -math.inf
    assert again.result("human").mean_r2 == pytest.approx(0.91)  # the undefined R^2 is left out of the mean
    assert "| t | 0.9100 | no law | human | human |" in markdown_side_by_side(again)


def _curve_csv(folder):
    rows = []
    x = np.geomspace(1e6, 1e9, 12)
    for label, floor in (("A", 0.3), ("B", 0.4)):
        loss = floor + 5.0 * x**-0.25
        rows += [
            ("NMT", "log_perplexity", label, xi, yi, int(i < 9)) for i, (xi, yi) in enumerate(zip(x, loss, strict=True))
        ]
    folder.mkdir()
    pd.DataFrame(rows, columns=["Domain", "Task", "Model", "Seen Examples", "Loss", "Training"]).to_csv(
        folder / RNSL_FILE, index=False
    )
    return folder


def test_bench_rnsl_scores_every_curve_with_every_method(tmp_path):
    out = tmp_path / "rnsl.json"
    args = ["bench", "--suite", "rnsl", "--rnsl", str(_curve_csv(tmp_path / "b")), "--method", "sld,m1,m3"]
    result = CliRunner().invoke(main, [*args, "--backend", "none", "--max-candidates", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = BenchComparison.model_validate_json(out.read_text())
    assert data.methods == ["sld", "m1", "m3"] and list(data.tasks) == ["nmt_a", "nmt_b"]
    for task in data.tasks.values():
        assert set(task.scores) == {"sld", "m1", "m3"}
        assert all(s.log_rmse is not None or not s.law_returned for s in task.scores.values())
        assert task.best_peer in {"m1", "m3"}
    assert data.summary["m3"].mean_log_rmse < data.summary["m1"].mean_log_rmse  # m1 has no floor
    assert "| nmt_a |" in result.output and "beats the best peer" in result.output


def test_bench_rejects_a_method_of_the_other_suite():
    result = CliRunner().invoke(main, ["bench", "--method", "m4"])
    assert result.exit_code == 2 and "Known: human, operon, sld" in result.output


@pytest.mark.slow
def test_bench_sldbench_runs_human_and_operon_side_by_side(shared_sldbench, tmp_path):
    out = tmp_path / "peers.json"
    args = ["bench", "--method", "human,operon", "--tasks", "easy_question_scaling_law", "--starts", "4"]
    result = CliRunner().invoke(main, [*args, "--corpus", str(shared_sldbench), "--budget-s", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    task = json.loads(out.read_text())["tasks"]["easy_question_scaling_law"]
    assert set(task["scores"]) == {"human", "operon"}
    assert "pooled_r2" in task["scores"]["operon"]["alternatives"]


def test_a_peer_scores_a_shared_curve_by_the_paper_metric(shared_rnsl):
    score = score_peer_curve(load_rnsl(shared_rnsl)["bb_date_1_shot"], "m1")
    assert score.n_params == 2 and 0 < score.log_rmse < 0.1 and score.log_rmse_se > 0


CONFIG = AgentConfig(
    engine=EngineConfig(backend="none", evolution_rounds=0, n_starts=2),
    stop=StopPolicy(budget_s=60, max_candidates=4),
)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.1, 10.0))
def test_rnsl_test_rows_never_influence_any_choice(tmp_path_factory, scale):
    curve = load_rnsl(_curve_csv(tmp_path_factory.mktemp("rnsl") / "b"))["nmt_a"]
    train, test = curve_splits(curve)
    perturbed = type(test)(X=test.X, Y=test.Y * scale, groups=test.groups)
    task = rnsl_task(curve)
    reference, predicted = score_sld_split(task, train, test, config=CONFIG)
    other, predicted_again = score_sld_split(task, train, perturbed, config=CONFIG)
    assert other.law == reference.law and other.validation_r2 == reference.validation_r2
    assert predicted is not None and predicted_again is not None
    np.testing.assert_array_equal(predicted, predicted_again)
    # The peers fit on the training rows alone: the same law whatever the test rows hold.
    shifted = type(curve)(
        name=curve.name,
        domain=curve.domain,
        label=curve.label,
        train=curve.train,
        test=curve.test.assign(loss=curve.test["loss"] * scale),
        source=curve.source,
    )
    assert score_peer_curve(shifted, "m3").law == score_peer_curve(curve, "m3").law
