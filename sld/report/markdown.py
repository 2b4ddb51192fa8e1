"""The Markdown rendering of a report (``report.md``): GitHub-flavoured tables, formulas as ``$...$`` math."""

from __future__ import annotations

from pathlib import Path

from sld.report.content import TaskReport, law_latex
from sld.report.plots import Plot
from sld.report.tables import (
    SCORE_HEADER,
    Table,
    anchors_table,
    candidates_table,
    constants_table,
    provenance_table,
    score_cells,
)


def cell(text: str) -> str:
    """Escape a table cell (pipes, line breaks)."""
    return text.replace("|", r"\|").replace("\n", " ")


def table(data: Table) -> str:
    """Render a table as GitHub-flavoured Markdown."""
    lines = ["| " + " | ".join(cell(name) for name in data.header) + " |",
             "|" + "---|" * len(data.header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in data.rows]
    return "\n".join(lines)


def comparison_table(report: TaskReport) -> str:
    """Render the laws side by side: formula in LaTeX, constants, validation and test scores."""
    targets = report.run.task.targets
    header = ["law", "formula", "constants per group", *SCORE_HEADER]
    rows = []
    for law in report.laws:
        formulas = [f"${law_latex(one)}$" for one in law.laws]
        if len(targets) > 1:
            formulas = [f"{target}: {formula}" for target, formula in zip(targets, formulas, strict=True)]
        rows.append([f"**{law.name}** ({law.citation})", "<br>".join(formulas), str(law.n_params),
                     *score_cells(law)])
    return table(Table(header, rows))


def render_markdown(report: TaskReport, plots: list[Plot], folder: Path) -> str:
    """Return ``report.md`` of a run; figure links are relative to ``folder`` (where the file is written)."""
    run, task = report.run, report.run.task
    out = [f"# {task.name}: discovered law and human-derived law", ""]
    if task.description:
        out += [task.description, ""]
    out += [f"Run `{run.path}`; {len(run.records)} candidates evaluated.", ""]
    out += [f"> {note}" for note in report.notes] + ([""] if report.notes else [])
    out += ["## Laws", "", comparison_table(report), "",
            "Validation: mean over the extrapolation folds inside the training rows (each group fitted on its "
            "smaller rows, scored on its larger ones), the folds the search chose by. Test: the official SLDBench "
            "score (constants fitted per group on all training rows, R² over every group's test rows together). "
            "NMSE = MSE / Var(y), NMAE = mean|error| / mean|y − mean(y)|, averaged over targets.", ""]
    for law in report.laws:
        for index, target in enumerate(task.targets):
            out += [f"- {law.name}, `{target}`: `{law.laws[index].text}`"]
    out.append("")
    anchors = anchors_table(report)
    if anchors is not None:
        out += ["### Published anchors (SLDBench leaderboard)", "", table(anchors), "",
                "Published values are the leaderboard's: clipped to [-1, 1], mean over runs. "
                f"Source: `{report.anchors_source}`.", ""]
    if plots:
        out += ["## Figures", ""]
        for plot in plots:
            out += [f"### {plot.title}", "", f"![{plot.title}]({plot.path.relative_to(folder).as_posix()})", "",
                    plot.caption, ""]
    out += ["## Constants per group", ""]
    for law in report.laws:
        for index, target in enumerate(task.targets):
            constants = constants_table(law, index, target)
            if constants is not None:
                out += [f"### {law.name} law, `{target}`", "", table(constants), ""]
    out += ["## Top candidates", ""]
    for target in task.targets:
        out += [f"### `{target}`", "", table(candidates_table(report, target)), ""]
    out += ["## Provenance", "", table(provenance_table(report)), ""]
    return "\n".join(out)
