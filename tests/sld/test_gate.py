"""The benchmark gate: the stored baseline, the comparison, the CLI, and the CI wiring that calls it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sld.benchmark import BenchResult, TaskScore
from sld.cli import main
from sld.gate import Baseline, GateError, check_gate
from tests.sld.report_data import write_sft_corpus

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "bench" / "baseline.json"


def result_with(scores: dict[str, float]) -> BenchResult:
    tasks = {task: TaskScore(r2=r2, nmse=1 - r2, nmae=0.1, n_params=3, law="a", seconds=1.0)
             for task, r2 in scores.items()}
    mean = sum(max(-1.0, min(1.0, r2)) for r2 in scores.values()) / len(scores)
    return BenchResult(method="sld", tasks=tasks, mean_r2=round(mean, 6))


def shifted(baseline: Baseline, delta: float) -> BenchResult:
    """The baseline's scores moved by ``delta`` on every task (clipped like the leaderboard)."""
    return result_with({task: max(-1.0, min(1.0, r2)) + delta for task, r2 in baseline.tasks.items()})


def stored_baseline() -> Baseline:
    return Baseline.model_validate_json(BASELINE.read_text())


def test_stored_baseline_states_its_tolerance_and_covers_every_task() -> None:
    baseline = stored_baseline()
    assert 0 < baseline.tolerance <= 0.1
    assert len(baseline.tasks) == 8
    assert baseline.command and baseline.notes
    clipped = [max(-1.0, min(1.0, r2)) for r2 in baseline.tasks.values()]
    assert baseline.mean_r2 == pytest.approx(sum(clipped) / len(clipped), abs=1e-6)


def test_gate_passes_within_the_tolerance_and_fails_beyond_it() -> None:
    baseline = stored_baseline()
    assert check_gate(shifted(baseline, 0.0), baseline).passed
    assert check_gate(shifted(baseline, -0.5 * baseline.tolerance), baseline).passed
    outcome = check_gate(shifted(baseline, -baseline.tolerance - 0.01), baseline)
    assert not outcome.passed
    assert outcome.lines()[-1].startswith("FAIL: mean R^2")
    assert check_gate(shifted(baseline, -baseline.tolerance - 0.01), baseline, tolerance=1.0).passed


def test_gate_refuses_a_result_without_the_baselines_tasks() -> None:
    baseline = Baseline(method="sld", mean_r2=0.5, tolerance=0.05, tasks={"a": 0.5, "b": 0.5})
    with pytest.raises(GateError, match="no score for task"):
        check_gate(result_with({"a": 0.9}), baseline)


def test_gate_cli_exit_codes_and_update(tmp_path: Path) -> None:
    baseline = Baseline(method="sld", mean_r2=0.8, tolerance=0.05, tasks={"a": 0.8, "b": 0.8})
    (tmp_path / "baseline.json").write_text(baseline.model_dump_json())
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(result_with({"a": 0.8, "b": 0.78}).model_dump_json())
    bad.write_text(result_with({"a": 0.8, "b": 0.6}).model_dump_json())
    runner = CliRunner()

    passed = runner.invoke(main, ["gate", str(good), "--baseline", str(tmp_path / "baseline.json")])
    assert passed.exit_code == 0 and "PASS" in passed.output
    failed = runner.invoke(main, ["gate", str(bad), "--baseline", str(tmp_path / "baseline.json")])
    assert failed.exit_code == 1 and "FAIL: mean R^2 0.7000 vs baseline 0.8000" in failed.output
    assert "b" in failed.output and "-0.2000" in failed.output

    updated = runner.invoke(main, ["gate", str(bad), "--baseline", str(tmp_path / "new.json"), "--update",
                                   "--tolerance", "0.03", "--notes", "test"])
    assert updated.exit_code == 0, updated.output
    assert json.loads((tmp_path / "new.json").read_text())["tolerance"] == 0.03
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"method": "sld"}')
    unreadable = runner.invoke(main, ["gate", str(garbage), "--baseline", str(tmp_path / "baseline.json")])
    assert unreadable.exit_code == 1 and unreadable.output.startswith("error: ")


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("sld") is None, reason="needs make and sld")
def test_ci_gate_target_fails_on_a_worse_result_and_passes_on_the_baseline(tmp_path: Path) -> None:
    baseline = stored_baseline()
    worse, same = tmp_path / "worse.json", tmp_path / "same.json"
    worse.write_text(shifted(baseline, -baseline.tolerance - 0.02).model_dump_json())
    same.write_text(shifted(baseline, 0.0).model_dump_json())

    def ci_gate(result: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "-s", "-C", str(REPO), "ci-gate", f"QUICK_JSON={result}"],
                              capture_output=True, text=True, timeout=120)

    failed = ci_gate(worse)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "FAIL" in failed.stdout
    passed = ci_gate(same)
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or shutil.which("sld") is None, reason="needs make and sld")
def test_ci_bench_writes_the_report_and_the_gate_judges_it(tmp_path: Path) -> None:
    corpus = write_sft_corpus(tmp_path)
    artifacts = tmp_path / "artifacts"
    lenient, strict = tmp_path / "lenient.json", tmp_path / "strict.json"
    lenient.write_text(Baseline(method="sld", mean_r2=0.5, tolerance=0.05, tasks={"sft_scaling_law": 0.5})
                       .model_dump_json())
    strict.write_text(Baseline(method="sld", mean_r2=1.0, tolerance=0.0, tasks={"sft_scaling_law": 1.0})
                      .model_dump_json())

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args, f"ARTIFACTS={artifacts}",
                               f"SLD_CORPUS={corpus}", "CI_TASKS=sft_scaling_law", "CI_BUDGET_S=5"],
                              capture_output=True, text=True, timeout=600)

    bench = make("ci-bench", f"CI_BASELINE={lenient}")
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert "PASS: mean R^2" in bench.stdout
    for path in ("quick.json", "quick.md", "report/index.html", "report/report.md",
                 "report/tasks/sft_scaling_law/index.html", "report/tasks/sft_scaling_law/figures/front.png"):
        assert (artifacts / path).is_file(), path
    gate = make("ci-gate", f"CI_BASELINE={strict}")
    assert gate.returncode != 0 and "FAIL: mean R^2" in gate.stdout


def test_ci_runs_the_tests_first_then_the_quick_bench_and_its_gate() -> None:
    script = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip().startswith("make ")]
    assert commands[0] == "make test"
    assert any(command.startswith("make ci-bench") for command in commands[1:])
    makefile = (REPO / "Makefile").read_text()
    bench_recipe = makefile.split("\nci-bench:", 1)[1].split("\n\n", 1)[0]
    assert "$(QUICK_BENCH)" in bench_recipe and "ci-gate" in bench_recipe
    assert "--report $(ARTIFACTS)/report" in makefile
    assert "CI_BASELINE ?= bench/baseline.json" in makefile
    assert "sld gate $(QUICK_JSON) --baseline $(CI_BASELINE)" in makefile


def test_research_workflow_discovers_on_a_dataset_in_the_repository_and_uploads_the_report() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "research.yml").read_text())
    assert (REPO / workflow["env"]["DATA"]).is_file()
    steps = workflow["jobs"]["discover"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "sld discover --data" in scripts and "--run-dir runs/research" in scripts
    assert "sld report runs/research --out report" in scripts
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert "report/" in upload["with"]["path"]
