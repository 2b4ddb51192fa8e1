import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sld.cli import discover_main, main

README = Path(__file__).resolve().parents[2] / "README.md"


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def _chinchilla_csv(path: Path, *, with_target: bool = True, rows: slice = slice(None)) -> Path:
    N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))
    frame = pd.DataFrame({"N": N.ravel(), "D": D.ravel()})
    frame["loss"] = 1.69 + 406.4 / frame.N**0.34 + 410.7 / frame.D**0.28
    frame = frame.iloc[rows]
    if not with_target:
        frame = frame.drop(columns="loss")
    frame.to_csv(path, index=False)
    return path


def test_every_command_is_in_the_readme():
    readme = README.read_text()
    for name in main.commands:
        assert f"sld {name}" in readme, f"README's CLI reference lacks `sld {name}`"


def test_version_and_help():
    assert run("--version").output.startswith("sld, version")
    result = run("--help")
    assert result.exit_code == 0 and "discover" in result.output


def test_tasks_lists_the_eight_tasks_and_the_embedded_default():
    result = run("tasks")
    assert result.exit_code == 0
    assert len(re.findall(r"^\w+_scaling_law$", result.output, flags=re.M)) == 9


def test_corpus_show(shared_sldbench):
    result = run("corpus", "show", "parallel_scaling_law", "--corpus", str(shared_sldbench))
    assert result.exit_code == 0, result.output
    assert "rows: 36 train, 12 test" in result.output
    assert "groups (2): pile, stack" in result.output


def test_fit_a_task_law_scores_test_rows(shared_sldbench, tmp_path):
    law = "(A / (num_params * (k * log(parallel_size) + 1)))**alpha + E"
    result = run(
        "fit",
        "--task",
        "parallel_scaling_law",
        "--law",
        law,
        "--corpus",
        str(shared_sldbench),
        "--json",
        str(tmp_path / "fit.json"),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "fit.json").read_text())
    assert set(summary["constants"]["loss"]) == {"pile", "stack"}
    assert summary["r2"] > 0.9


def test_fit_csv_predicts_unlabelled_rows(tmp_path):
    train = _chinchilla_csv(tmp_path / "train.csv")
    predict = _chinchilla_csv(tmp_path / "next.csv", with_target=False, rows=slice(0, 4))
    result = run(
        "fit",
        "--data",
        str(train),
        "--features",
        "N,D",
        "--target",
        "loss",
        "--law",
        "E + A/N**a + B/D**b",
        "--predict",
        str(predict),
        "--out",
        str(tmp_path / "p.csv"),
    )
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["N", "D", "predicted_loss"]
    assert "train R^2" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("fit", "--task", "vocab", "--law", "a*unknown_feature"), "unknown_feature"),
        (("fit", "--task", "nonsense_task", "--law", "a"), "Unknown task 'nonsense_task'"),
        (("fit", "--task", "sft", "--law", "__import__('os')"), "cannot use law"),
    ],
)
def test_domain_errors_are_one_line_exit_1(args, fragment, shared_sldbench):
    result = run(*args, "--corpus", str(shared_sldbench))
    assert result.exit_code == 1
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_csv_column_is_one_line_with_a_fix(tmp_path):
    train = _chinchilla_csv(tmp_path / "train.csv")
    result = run("fit", "--data", str(train), "--features", "N,D", "--target", "los", "--law", "a + b*N")
    assert result.exit_code == 1
    assert "Did you mean 'loss'?" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_usage_error_exits_2():
    assert run("fit", "--law", "a").exit_code == 2


def test_bench_human_json_schema(shared_sldbench, tmp_path):
    out = tmp_path / "human.json"
    result = run(
        "bench",
        "--method",
        "human",
        "--tasks",
        "parallel_scaling_law,sft_scaling_law",
        "--corpus",
        str(shared_sldbench),
        "--starts",
        "6",
        "--json",
        str(out),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["method"] == "human"
    for task in ("parallel_scaling_law", "sft_scaling_law"):
        assert {"r2", "nmse", "nmae", "n_params", "law", "seconds"} <= set(data["tasks"][task])
    assert data["mean_r2"] == pytest.approx(np.mean([data["tasks"][t]["r2"] for t in data["tasks"]]), abs=1e-6)
    assert "| parallel_scaling_law |" in result.output


def test_bench_sld_json_records_search_statistics(shared_sldbench, tmp_path):
    out = tmp_path / "sld.json"
    args = ["bench", "--method", "sld", "--tasks", "parallel_scaling_law", "--corpus", str(shared_sldbench)]
    result = run(*args, "--backend", "none", "--max-candidates", "8", "--json", str(out))
    assert result.exit_code == 0, result.output
    score = json.loads(out.read_text())["tasks"]["parallel_scaling_law"]
    assert score["candidates_evaluated"] == 8
    assert set(score["shared"]) == {"loss"} and isinstance(score["shared"]["loss"], list)
    assert {"spearman_validation_test", "pairs"} <= set(score["ranking"])


def test_discover_csv_end_to_end(tmp_path):
    train = _chinchilla_csv(tmp_path / "train.csv", rows=slice(0, 20))
    test = _chinchilla_csv(tmp_path / "test.csv", rows=slice(20, 25))
    out = tmp_path / "summary.json"
    result = CliRunner().invoke(
        main,
        [
            "discover",
            "--data",
            str(train),
            "--features",
            "N,D",
            "--target",
            "loss",
            "--axis",
            "D",
            "--max-params",
            "5",
            "--predict",
            str(test),
            "--out",
            str(tmp_path / "p.csv"),
            "--budget-s",
            "40",
            "--backend",
            "none",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["law"]["n_params"] <= 5
    assert summary["test_r2"] > 0.99
    assert {"task", "law", "test_r2", "validation_r2", "candidates_evaluated", "proposals", "seconds"} <= set(summary)
    assert len(pd.read_csv(tmp_path / "p.csv")) == 5


def test_discover_console_script_is_sld_discover(monkeypatch):
    calls = []
    monkeypatch.setattr(main, "main", lambda args, prog_name: calls.append((args, prog_name)))
    discover_main(["--task", "sft"])
    assert calls == [(["discover", "--task", "sft"], "discover")]


def test_bench_fit_speed_json_reports_both_solvers_and_ratios(shared_sldbench, tmp_path):
    out = tmp_path / "speed.json"
    result = run(
        "bench", "--fit-speed", "--tasks", "parallel_scaling_law", "--fit-speed-laws", "1",
        "--corpus", str(shared_sldbench), "--json", str(out), "--markdown", str(tmp_path / "speed.md"),
    )
    assert result.exit_code == 0, result.output
    task = json.loads(out.read_text())["tasks"]["parallel_scaling_law"]
    assert set(task["solvers"]) == {"batched", "scipy"}
    for speed in task["solvers"].values():
        assert speed["candidates_per_s"] > 0 and speed["fits_per_s"] > 0 and len(speed["statuses"]) == 1
    ratio = task["solvers"]["batched"]["candidates_per_s"] / task["solvers"]["scipy"]["candidates_per_s"]
    assert task["candidates_ratio"] == pytest.approx(ratio, rel=1e-2)
    assert "| parallel_scaling_law |" in result.output
    assert "| parallel_scaling_law |" in (tmp_path / "speed.md").read_text()
    # Two groups: the law with each of its constants shared by both, under both solvers.
    shared = task["shared"]
    assert len(shared["candidates"]) >= 2 and all("[shared: " in text for text in shared["candidates"])
    assert set(shared["candidates_per_s"]) == {"batched", "scipy"} and min(shared["candidates_per_s"].values()) > 0
    assert shared["statuses"]["batched"].count("ok") >= shared["statuses"]["scipy"].count("ok")


def test_discover_restarts_flag_sets_the_independent_searches(tmp_path):
    train = _chinchilla_csv(tmp_path / "train.csv", rows=slice(0, 20))
    args = ["discover", "--data", str(train), "--features", "N,D", "--target", "loss", "--axis", "D",
            "--max-params", "5", "--budget-s", "40", "--backend", "none", "--no-report"]
    counts = []
    for restarts in ("1", "2"):
        out = tmp_path / f"summary{restarts}.json"
        result = CliRunner().invoke(main, [*args, "--restarts", restarts, "--json", str(out),
                                           "--run-dir", str(tmp_path / f"run{restarts}")])
        assert result.exit_code == 0, result.output
        counts.append(json.loads(out.read_text())["candidates_evaluated"])
    assert counts[1] > counts[0]  # the second search adds its own evolution
    bad = CliRunner().invoke(main, [*args, "--restarts", "0"])
    assert bad.exit_code == 2 and "--restarts" in bad.output
    bad = CliRunner().invoke(main, [*args, "--search-patience", "0"])
    assert bad.exit_code == 2 and "--search-patience" in bad.output
