"""Reports of discovery runs and benchmarks: files, tables, figures, provenance."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from sld.benchmark import BenchResult, TaskScore
from sld.cli import main
from sld.report.bench_report import write_bench_report
from sld.report.data import load_rows, load_run
from sld.report.errors import RunDirectoryError
from sld.report.run_report import write_report
from tests.sld.report_data import FinishedRun


class _Page(HTMLParser):
    """Collect the tables (as rows of cell text) and the image sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


def markdown_table(text: str, first_header: str) -> list[list[str]]:
    """Return the rows (header first) of the Markdown table whose first header cell is ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def assert_pngs_decode(folder: Path) -> list[Path]:
    pngs = sorted(folder.rglob("*.png"))
    assert pngs
    for png in pngs:
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10, png
    return pngs


def test_user_data_report_has_files_tables_and_decodable_figures(user_run: FinishedRun, tmp_path: Path) -> None:
    files = write_report(user_run.run_dir, tmp_path / "out", references=["E + A * N**(-alpha)"])

    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"index.html", "report.md", "report.json", "figures"}
    names = {p.name for p in assert_pngs_decode(tmp_path / "out" / "figures")}
    assert {"curves_loss.png", "parity.png", "residuals.png", "front.png"} <= names
    assert any(name.startswith("law") for name in names)  # rendered formulas

    md = files.markdown.read_text()
    laws = markdown_table(md, "law")
    assert laws[0][:3] == ["law", "formula", "constants per group"]
    assert [row[0].split()[0] for row in laws[1:]] == ["**discovered**", "**reference**"]
    for row in laws[1:]:
        assert row[1].startswith("$") and row[1].endswith("$")  # LaTeX
        assert all(re.fullmatch(r"-?\d+\.\d{4}", cell) for cell in row[3:]), row  # validation and test scores
    constants = markdown_table(md, "group")
    assert [row[0] for row in constants[1:]] == ["a", "b", "c"]
    assert "![" in md and "figures/curves_loss.png" in md
    provenance = {row[0]: row[1] for row in markdown_table(md, "field")[1:]}
    assert "same as the run's: yes" in provenance["rows of this report"]
    assert re.search(r"[0-9a-f]{64}", provenance["train rows (sha256)"])
    assert provenance["seed"] == "0"
    assert "numpy" in provenance["packages"]
    assert provenance["LLM usage"] == "none (offline search)"

    page = parse_page(files.html)
    assert page.tables[0][0][:3] == ["law", "constants", "validation R²"]
    assert len(page.tables[0]) == 1 + 2 * 2  # a row of scores and a row of formulas per law
    assert page.tables[0][1][0].startswith("discovered") and page.tables[0][3][0].startswith("reference")
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)


def test_report_scores_match_the_run_and_the_true_law_wins(user_run: FinishedRun, tmp_path: Path) -> None:
    files = write_report(user_run.run_dir, tmp_path / "out", references=["E + A * N**(-alpha)"])
    result = json.loads((user_run.run_dir / "result.json").read_text())
    summary = json.loads(files.summary.read_text())

    discovered, reference = summary["laws"]
    assert discovered["test"]["r2"] == pytest.approx(result["test_r2"], abs=1e-9)
    chosen = [json.loads(line) for line in (user_run.run_dir / "candidates.jsonl").read_text().splitlines()]
    recorded = max(c["validation_r2"] for c in chosen if c["expression"] == result["law"]["expression"])
    assert discovered["validation"]["r2"] == pytest.approx(recorded, abs=1e-6)  # the folds the search used
    assert reference["test"]["r2"] > 0.99  # the generating law


def test_sldbench_report_compares_with_the_human_law_and_the_anchors(sft_run: FinishedRun, tmp_path: Path) -> None:
    files = write_report(sft_run.run_dir, tmp_path / "out", corpus=str(sft_run.corpus))

    names = [law.name for law in files.report.laws]
    assert names == ["discovered", "human-derived"]
    human = files.report.laws[1]
    assert human.test is not None and human.test.r2 > 0.95
    md = files.markdown.read_text()
    anchors = {row[0]: row[1] for row in markdown_table(md, "system")[1:]}
    assert anchors["human-derived laws"] == "0.9571"
    assert anchors["SLDAgent (GPT-5)"] == "0.9930"
    assert anchors["best single run"] == "0.9945"
    assert "Lin et al. 2024" in md
    assert_pngs_decode(tmp_path / "out")


def test_report_without_its_data_still_shows_the_recorded_scores(user_run: FinishedRun, tmp_path: Path) -> None:
    run_dir = tmp_path / "moved"
    shutil.copytree(user_run.run_dir, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["paths"] = {"train": str(tmp_path / "gone.csv"), "test": None}
    (run_dir / "config.json").write_text(json.dumps(config))

    files = write_report(run_dir, tmp_path / "out")

    assert files.report.rows is None
    assert any("could not be loaded" in note for note in files.report.notes)
    assert [p.path.name for p in files.plots] == ["front.png"]
    result = json.loads((run_dir / "result.json").read_text())
    assert files.report.discovered.test is not None
    assert files.report.discovered.test.r2 == pytest.approx(result["test_r2"])


def test_given_data_that_differs_from_the_run_is_flagged(user_run: FinishedRun, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(user_run.root / "train.csv")
    frame["loss"] *= 1.01
    frame.to_csv(tmp_path / "other.csv", index=False)
    rows = load_rows(load_run(user_run.run_dir), data=tmp_path / "other.csv")
    assert rows.verified is False and rows.test is None


def test_load_run_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunDirectoryError, match=r"no result\.json.*resume"):
        load_run(tmp_path / "half")


def test_report_cli(user_run: FinishedRun, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["report", str(user_run.run_dir), "--out", str(tmp_path / "r"),
                              "--reference", "E + A * N**(-alpha)"])
    assert ok.exit_code == 0, ok.output
    assert re.search(r"^discovered: test R\^2 \d\.\d{4}", ok.stdout, re.M)
    assert re.search(r"^reference: test R\^2 0\.99\d\d", ok.stdout, re.M)
    missing = runner.invoke(main, ["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")])
    assert missing.exit_code == 1
    assert missing.output.strip().startswith("error: Run directory") and missing.output.count("\n") == 1


def test_bench_report_writes_a_summary_and_a_page_per_task(sft_run: FinishedRun, tmp_path: Path) -> None:
    result_json = json.loads((sft_run.run_dir / "result.json").read_text())
    score = TaskScore(r2=result_json["test_r2"], nmse=result_json["test_nmse"], nmae=result_json["test_nmae"],
                      n_params=result_json["law"]["n_params"], law=result_json["law"]["expression"], seconds=1.0,
                      validation_r2=result_json["validation_r2"])
    result = BenchResult(method="sld", tasks={"sft_scaling_law": score}, mean_r2=round(score.r2, 6))

    files = write_bench_report(result, tmp_path / "bench", run_root=sft_run.run_dir.parent, corpus=str(sft_run.corpus))

    assert (tmp_path / "bench" / "tasks" / "sft_scaling_law" / "index.html").is_file()
    assert (tmp_path / "bench" / "tasks" / "sft_scaling_law" / "report.md").is_file()
    assert BenchResult.model_validate_json((tmp_path / "bench" / "bench.json").read_text()) == result
    summary = markdown_table(files.markdown.read_text(), "task")
    assert summary[0][1] == "sld test R²"
    row = summary[1]
    assert row[0] == "[sft_scaling_law](tasks/sft_scaling_law/report.md)"
    assert float(row[1]) == pytest.approx(score.r2, abs=1e-4)
    assert float(row[2]) > 0.95  # the human-derived law refitted by the task report
    assert row[3] == "0.9571" and row[4] == "0.9930"
    page = parse_page(files.html)
    assert page.tables[0][1][0] == "sft_scaling_law"
    assert 'href="tasks/sft_scaling_law/index.html"' in files.html.read_text()
    assert 'href="../../index.html"' in (tmp_path / "bench" / "tasks" / "sft_scaling_law" / "index.html").read_text()
    assert_pngs_decode(tmp_path / "bench")


def test_front_marks_chosen_law_even_with_many_targets() -> None:
    # The figure helpers draw from arrays alone; a smoke check of the log axis rule they share.
    from sld.report.plots import wide_positive

    assert wide_positive(np.array([1.0, 100.0]))
    assert not wide_positive(np.array([1.0, 5.0]))
    assert not wide_positive(np.array([-1.0, 100.0]))
