"""Write the report of one discovery run: ``index.html``, ``report.md``, ``report.json`` and the figures.

Example
-------
``sld report runs/sft --out report/sft``
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sld.corpus.errors import CorpusError
from sld.report.content import LawReport, TaskReport, build_task_report, law_latex
from sld.report.data import Rows, load_rows, load_run
from sld.report.errors import ReportError
from sld.report.html import render_html
from sld.report.markdown import render_markdown
from sld.report.plots import Plot, formula_png, task_plots
from sld.search import Scores


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    folder : Path
        The output folder.
    html, markdown, summary : Path
        ``index.html``, ``report.md`` and ``report.json``.
    plots : list of Plot
        The figures (PNG files under ``figures/``).
    report : TaskReport
        The content, for callers that tabulate several reports (``sld bench --report``).
    """

    folder: Path
    html: Path
    markdown: Path
    summary: Path
    plots: list[Plot]
    report: TaskReport


def write_report(
    run_dir: str | Path,
    out: str | Path,
    *,
    corpus: str | None = None,
    data: str | None = None,
    test_data: str | None = None,
    references: Sequence[str] = (),
    literature: bool = True,
    n_starts: int | None = None,
    back_link: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ReportFiles:
    """Write the report of a finished run directory into ``out``.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``sld discover --run-dir``.
    out : str or Path
        Output folder (created; files in it are replaced).
    corpus : str, optional
        SLDBench folder for the rows of an SLDBench task and the published anchors beside it.
    data, test_data : str, optional
        Training and test files of a user-data run when ``config.json`` records none (or to override them).
    references : sequence of str
        More law expressions to fit and compare (e.g. the law you used so far).
    literature : bool
        Whether to compare with the human-derived law of an SLDBench task.
    n_starts : int, optional
        Multi-start count of the comparison fits (default: the run's).
    back_link : str, optional
        Relative link from ``index.html`` to a parent page.
    progress : callable
        Receives progress lines.

    Returns
    -------
    ReportFiles

    Examples
    --------
    >>> files = write_report("runs/sft", "report/sft")  # doctest: +SKIP
    >>> files.html.name  # doctest: +SKIP
    'index.html'
    """
    run = load_run(run_dir)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows: Rows | None = None
    try:
        rows = load_rows(run, corpus=corpus, data=data, test_data=test_data)
    except (CorpusError, ReportError) as exc:
        if data is not None:
            raise
        progress(f"report {run.task.name}: no data plots ({exc})")
    report = build_task_report(run, rows, references=references, literature=literature, corpus=corpus,
                               n_starts=n_starts, progress=progress)
    figures = folder / "figures"
    plots = task_plots(report, figures)
    formulas: dict[tuple[str, str], Path | None] = {}
    for i, law in enumerate(report.laws):
        for j, (target, one) in enumerate(zip(run.task.targets, law.laws, strict=True)):
            path = figures / "formulas" / f"law{i}_target{j}.png"
            formulas[(law.name, target)] = path if formula_png(law_latex(one), path) else None
    markdown = folder / "report.md"
    markdown.write_text(render_markdown(report, plots, folder))
    html = folder / "index.html"
    html.write_text(render_html(report, plots, formulas, back_link=back_link))
    summary = folder / "report.json"
    summary.write_text(json.dumps(report_summary(report), indent=2))
    progress(f"report {run.task.name}: wrote {html}")
    return ReportFiles(folder=folder, html=html, markdown=markdown, summary=summary, plots=plots, report=report)


def _scores(scores: Scores | None) -> dict[str, float | None] | None:
    if scores is None:
        return None
    return {name: (value if math.isfinite(value) else None)
            for name, value in (("r2", scores.r2), ("nmse", scores.nmse), ("nmae", scores.nmae))}


def _law_summary(law: LawReport, targets: Sequence[str]) -> dict[str, object]:
    return {"name": law.name, "citation": law.citation, "n_params": law.n_params,
            "expressions": {target: one.text for target, one in zip(targets, law.laws, strict=True)},
            "validation": _scores(law.validation), "test": _scores(law.test)}


def report_summary(report: TaskReport) -> dict[str, object]:
    """Return ``report.json``: every law's expressions and scores, the anchors, the notes."""
    targets = report.run.task.targets
    return {"task": report.run.task.name, "run_dir": str(report.run.path),
            "laws": [_law_summary(law, targets) for law in report.laws],
            "anchors": report.anchors, "notes": report.notes}
