"""``sld discover`` writes its run directory and report by default (sld/report/after_discover.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from sld.cli import main
from sld.report.after_discover import default_run_dir

GOOD = Path(__file__).parents[1] / "corpus" / "bad_inputs" / "good.csv"


def test_default_run_dir_is_new_and_named_by_task_and_time(tmp_path):
    now = datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC)
    first = default_run_dir("sft_scaling_law", root=tmp_path, now=now)
    assert first == tmp_path / "sft_scaling_law-20261201-083005"
    first.mkdir()
    assert default_run_dir("sft_scaling_law", root=tmp_path, now=now).name == "sft_scaling_law-20261201-083005-2"


def test_default_discover_ends_with_the_report_path_and_shows_the_literature_law(isolated_env):
    result = CliRunner().invoke(main, ["discover", "--budget-s", "4", "--backend", "none"])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("report: sld-runs/proxy_scaling_law-") and last.endswith("/report/index.html")
    html = isolated_env / last.removeprefix("report: ")
    assert html.is_file()
    run_dir = html.parent.parent
    assert (run_dir / "config.json").is_file() and (run_dir / "result.json").is_file()
    markdown = (html.parent / "report.md").read_text()
    # The chosen law beside the literature law (Chinchilla's form for the embedded proxy runs).
    assert "discovered law and human-derived law" in markdown and "Hoffmann et al. 2022" in markdown
    assert "proxy_scaling_law (embedded proxy runs)" in markdown and "user data" not in markdown
    assert (html.parent / "figures" / "curves_loss.png").stat().st_size > 10_000
    page = html.read_text()
    assert 'alt="loss along tokens, per group"' in page and "part right of the dotted line is extrapolated" in page


def test_no_report_keeps_the_run_directory_only(isolated_env):
    args = ["discover", "--data", str(GOOD), "--features", "N,D", "--target", "loss", "--group", "model",
            "--max-params", "4", "--backend", "none", "--budget-s", "4", "--no-report"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run directory: sld-runs/good-")
    run_dir = isolated_env / last.removeprefix("run directory: ")
    assert (run_dir / "result.json").is_file() and not (run_dir / "report").exists()


def test_a_failed_report_is_a_warning_and_keeps_the_run(tmp_path, monkeypatch):
    from sld.report import after_discover
    from sld.report.errors import ReportError

    def broken(*args, **kwargs):
        raise ReportError("no rows")

    monkeypatch.setattr(after_discover, "write_report", broken)
    lines: list[str] = []
    assert after_discover.report_run(tmp_path / "run", progress=lines.append) is None
    assert lines == [f"warning: no report (no rows); the run is kept in {tmp_path / 'run'}: "
                     f"try `sld report {tmp_path / 'run'} --out DIR`"]
