"""Write the report of a benchmark: a summary page over the tasks and one run report per task.

Layout of ``out``: ``index.html`` and ``report.md`` (summary table, bar chart), ``bench.json`` (the result),
``tasks/<task>/`` (each run's report, see :func:`sld.report.run_report.write_report`).

Example
-------
``sld bench --method sld --budget-s 30 --backend none --report artifacts/report``
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from sld.anchors import HUMAN, SLDAGENT_GPT5, load_anchors
from sld.benchmark import BenchResult
from sld.report import html, markdown
from sld.report.errors import ReportError
from sld.report.plots import plot_bench_summary
from sld.report.run_report import ReportFiles, write_report
from sld.report.tables import Table, number


@dataclass(frozen=True)
class BenchReportFiles:
    """What :func:`write_bench_report` wrote: the summary pages and each task's report."""

    folder: Path
    html: Path
    markdown: Path
    tasks: dict[str, ReportFiles]


def write_bench_report(
    result: BenchResult,
    out: str | Path,
    *,
    run_root: str | Path | None = None,
    corpus: str | None = None,
    n_starts: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchReportFiles:
    """Write the summary of a benchmark result and, when its runs were kept, a report per task.

    Parameters
    ----------
    result : BenchResult
        ``sld bench`` result.
    out : str or Path
        Output folder.
    run_root : str or Path, optional
        Folder with one run directory per task (``sld bench --run-dir``); without it, the summary only.
    corpus : str, optional
        SLDBench folder (rows for the plots, published anchors beside it).
    n_starts : int, optional
        Multi-start count of the comparison fits (default: each run's).
    progress : callable
        Receives progress lines.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(result.model_dump_json(indent=2))
    reports: dict[str, ReportFiles] = {}
    failures: dict[str, str] = {}
    for task in result.tasks:
        run_dir = Path(run_root) / task if run_root is not None else None
        if run_dir is None or not (run_dir / "result.json").is_file():
            continue
        try:
            reports[task] = write_report(run_dir, folder / "tasks" / task, corpus=corpus, n_starts=n_starts,
                                         back_link="../../index.html", progress=progress)
        except ReportError as exc:
            failures[task] = str(exc)
            progress(f"report {task}: failed ({exc})")
    summary = _summary(result, reports, corpus)
    chart = plot_bench_summary(
        [(task, {system: _float(cells[index]) for index, system in _CHART_COLUMNS.items()})
         for task, cells in zip(result.tasks, summary.rows, strict=False)],
        folder / "figures" / "summary.png")
    notes = [f"{task}: no report ({message})" for task, message in failures.items()]
    md = folder / "report.md"
    md.write_text(_markdown(result, summary, chart.path.relative_to(folder).as_posix(), reports, notes))
    page = folder / "index.html"
    page.write_text(_html(result, summary, html.data_uri(chart.path), reports, notes))
    progress(f"bench report: wrote {page}")
    return BenchReportFiles(folder=folder, html=page, markdown=md, tasks=reports)


LAW_WIDTH = 160  # characters of a law shown in the summary; the task's page has it in full


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# Summary columns drawn in the bar chart: column index -> legend label.
_CHART_COLUMNS = {1: "this run", 2: "human-derived law (refitted here)", 3: "human-derived laws (published)",
                  4: "SLDAgent GPT-5 (published)"}


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return -math.inf if text == "failed" else None
    return value


def _summary(result: BenchResult, reports: dict[str, ReportFiles], corpus: str | None) -> Table:
    anchors = load_anchors(corpus)
    rows = []
    for task, score in result.tasks.items():
        human = None
        if task in reports:
            laws = {law.name: law for law in reports[task].report.laws}
            if "human-derived" in laws and laws["human-derived"].test is not None:
                human = laws["human-derived"].test.r2
        published = [anchors.get(system, task) if anchors else None for system in (HUMAN, SLDAGENT_GPT5)]
        rows.append([task, number(score.r2), number(human), number(published[0]), number(published[1]),
                     number(score.validation_r2), str(score.n_params), number(score.seconds, 1),
                     _short(score.law, LAW_WIDTH)])
    return Table(["task", f"{result.method} test R²", "human-derived (refitted here)", "human-derived (published)",
                  "SLDAgent GPT-5 (published)", "validation R²", "constants", "seconds", "law"], rows)


def _markdown(result: BenchResult, summary: Table, chart: str, reports: dict[str, ReportFiles],
              notes: list[str]) -> str:
    rows = [[f"[{row[0]}](tasks/{row[0]}/report.md)" if row[0] in reports else row[0], *row[1:-1],
             f"`{row[-1]}`"] for row in summary.rows]
    out = [f"# SLDBench: {result.method}", "",
           f"Mean test R² over {len(result.tasks)} tasks (each clipped to [-1, 1], as the leaderboard does): "
           f"**{result.mean_r2:.4f}**.", ""]
    out += [f"> {note}" for note in notes] + ([""] if notes else [])
    out += [markdown.table(Table(summary.header, rows)), "", f"![test R² per task]({chart})", ""]
    return "\n".join(out)


def _html(result: BenchResult, summary: Table, chart: str, reports: dict[str, ReportFiles], notes: list[str]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in summary.header)
    body = []
    for row in summary.rows:
        task = row[0]
        link = f'<a href="tasks/{escape(task)}/index.html">{escape(task)}</a>' if task in reports else escape(task)
        numbers = "".join(f'<td class="num">{escape(value)}</td>' for value in row[1:-1])
        body.append(f"<tr><td>{link}</td>{numbers}<td><code>{escape(row[-1])}</code></td></tr>")
    parts = [f"<h1>SLDBench: {escape(result.method)}</h1>",
             f"<p>Mean test R² over {len(result.tasks)} tasks (each clipped to [-1, 1], as the leaderboard does): "
             f"<b>{result.mean_r2:.4f}</b>. Each task links to its report.</p>"]
    parts += [f'<p class="note">{escape(note)}</p>' for note in notes]
    parts += [f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
              f'<figure><img src="{chart}" alt="test R² per task"><figcaption>Official test R² per task, clipped to '
              "[-1, 1].</figcaption></figure>"]
    return html.page(f"sld bench: {result.method}", "\n".join(parts))
