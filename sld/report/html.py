"""The HTML rendering of a report (``index.html``): one self-contained page, figures and formulas embedded.

No network access and no external script or style: the page opens the same from a CI artifact, a mail attachment
or a file browser. A few lines of script log a console error for any image that fails to decode, which the
browser test looks for.
"""

from __future__ import annotations

import base64
import json
from html import escape
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

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.2rem 1.6rem 3rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.55rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.02rem; margin-top: 1.4rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.86rem; }
th, td { border: 1px solid #d8d8d8; padding: 0.28rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f4f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef7ee; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.8rem; }
pre { background: #f6f8fa; padding: 0.7rem; overflow-x: auto; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.86rem; max-width: 900px; }
div.formula { max-width: 900px; overflow-x: auto; padding: 0.15rem 0; }
img.formula { max-width: none; vertical-align: middle; }
.note { background: #fff6e0; border-left: 4px solid #f0b400; padding: 0.5rem 0.8rem; }
.muted { color: #666; font-size: 0.86rem; } details { margin: 0.4rem 0; } summary { cursor: pointer; }
nav a { margin-right: 0.9rem; }
"""

IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  for (const image of document.images) {
    if (!image.complete || image.naturalWidth === 0) { console.error("image failed to load: " + image.alt); }
  }
});
</script>"""


def data_uri(path: Path) -> str:
    """Return a PNG file as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def table(data: Table, *, numeric_from: int = 1, best_row: int | None = None) -> str:
    """Render a table; cells from column ``numeric_from`` on are right-aligned when they look like numbers."""
    head = "".join(f"<th>{escape(name)}</th>" for name in data.header)
    body = []
    for index, row in enumerate(data.rows):
        cells = []
        for column, value in enumerate(row):
            numeric = column >= numeric_from and value.replace(".", "", 1).replace("-", "", 1).isdigit()
            cells.append(f'<td class="num">{escape(value)}</td>' if numeric else f"<td>{escape(value)}</td>")
        attribute = ' class="best"' if index == best_row else ""
        body.append(f"<tr{attribute}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    """Wrap a body in the report's HTML page."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n{IMAGE_CHECK}\n</body>\n</html>\n")


def figure(plot: Plot) -> str:
    """Render a figure with its caption, the PNG embedded."""
    return (f'<figure><img src="{data_uri(plot.path)}" alt="{escape(plot.title)}">'
            f"<figcaption>{escape(plot.caption)}</figcaption></figure>")


def comparison_table(report: TaskReport, formulas: dict[tuple[str, str], Path | None]) -> str:
    """Render the laws side by side: a row of scores per law, its formula (image and LaTeX source) below it."""
    targets = report.run.task.targets
    head = "".join(f"<th>{escape(name)}</th>" for name in ["law", "constants", *SCORE_HEADER])

    def test_r2(index: int) -> float:
        scores = report.laws[index].test
        return scores.r2 if scores is not None and not scores.failed else float("-inf")

    best = max(range(len(report.laws)), key=test_r2)
    rows = []
    for index, law in enumerate(report.laws):
        parts = []
        for target, one in zip(targets, law.laws, strict=True):
            image = formulas.get((law.name, target))
            label = f"<b>{escape(target)}</b> = " if len(targets) > 1 else ""
            rendered = (f'<img class="formula" src="{data_uri(image)}" alt="{escape(one.text)}">' if image
                        else f"<code>{escape(one.text)}</code>")
            parts.append(f'<div class="formula">{label}{rendered}<details><summary class="muted">LaTeX, text'
                         f"</summary><code>{escape(law_latex(one))}</code><br><code>{escape(one.text)}</code>"
                         "</details></div>")
        cells = "".join(f'<td class="num">{escape(value)}</td>' for value in score_cells(law))
        attribute = ' class="best"' if index == best and len(report.laws) > 1 else ""
        rows.append(f'<tr{attribute}><td rowspan="2"><b>{escape(law.name)}</b><br><span class="muted">'
                    f'{escape(law.citation)}</span></td><td class="num">{law.n_params}</td>{cells}</tr>'
                    f'<tr{attribute}><td colspan="{1 + len(SCORE_HEADER)}">{"".join(parts)}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(report: TaskReport, plots: list[Plot], formulas: dict[tuple[str, str], Path | None],
                *, back_link: str | None = None) -> str:
    """Return ``index.html`` of a run.

    Parameters
    ----------
    report : TaskReport
        What to show.
    plots : list of Plot
        Figures, embedded in order.
    formulas : dict
        ``{(law name, target): PNG of the rendered formula or None}``.
    back_link : str, optional
        Relative link to a parent page (the benchmark summary).
    """
    run, task = report.run, report.run.task
    parts = []
    if back_link:
        parts.append(f'<nav><a href="{escape(back_link)}">← benchmark summary</a></nav>')
    parts.append(f"<h1>{escape(task.name)}</h1>")
    if task.description:
        parts.append(f"<p>{escape(task.description)}</p>")
    parts.append(f'<p class="muted">Run <code>{escape(str(run.path))}</code>; {len(run.records)} candidates '
                 "evaluated. The row with a green background scored best on the test rows.</p>")
    parts += [f'<p class="note">{escape(note)}</p>' for note in report.notes]
    parts += ["<h2>Laws</h2>", comparison_table(report, formulas),
              '<p class="muted">Validation: mean over the extrapolation folds inside the training rows (each group '
              "fitted on its smaller rows, scored on its larger ones), the folds the search chose by. Test: the "
              "official SLDBench score (constants fitted per group on all training rows; R² over every group's test "
              "rows together). NMSE = MSE / Var(y); NMAE = mean|error| / mean|y − mean(y)|; averaged over "
              "targets.</p>"]
    anchors = anchors_table(report)
    if anchors is not None:
        parts += ["<h3>Published anchors (SLDBench leaderboard)</h3>", table(anchors),
                  '<p class="muted">Published values are the leaderboard\'s: clipped to [-1, 1], mean over runs. '
                  f'Source: <code>{escape(str(report.anchors_source))}</code>.</p>']
    if plots:
        parts.append("<h2>Figures</h2>")
        for plot in plots:
            parts += [f"<h3>{escape(plot.title)}</h3>", figure(plot)]
    parts.append("<h2>Constants per group</h2>")
    for law in report.laws:
        for index, target in enumerate(task.targets):
            constants = constants_table(law, index, target)
            if constants is not None:
                opened = " open" if len(constants.rows) <= 8 else ""
                parts.append(f"<details{opened}><summary>{escape(law.name)} law, {escape(target)} "
                             f"({len(constants.rows)} groups)</summary>{table(constants)}</details>")
    parts.append("<h2>Top candidates</h2>")
    for target in task.targets:
        if len(task.targets) > 1:
            parts.append(f"<h3>{escape(target)}</h3>")
        parts.append(table(candidates_table(report, target)))
    parts += ["<h2>Provenance</h2>", table(provenance_table(report), numeric_from=99)]
    parts.append("<details><summary>config.json</summary><pre>"
                 f"{escape(json.dumps(run.config, indent=2))}</pre></details>")
    return page(f"sld report: {task.name}", "\n".join(parts))
