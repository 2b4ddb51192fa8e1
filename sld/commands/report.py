"""``sld report``: an HTML page and a Markdown file that show what a discovery run found.

Example
-------
``sld report runs/sft --out report/sft`` after ``sld discover --task sft_scaling_law --run-dir runs/sft``.
"""

from __future__ import annotations

import click

from sld.commands.options import corpus_option


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for index.html, report.md, report.json and figures/.")
@corpus_option
@click.option("--data", type=click.Path(dir_okay=False),
              help="Training rows of a user-data run (default: the file recorded in the run's config.json).")
@click.option("--test-data", type=click.Path(dir_okay=False), help="Held-out rows of a user-data run.")
@click.option("--reference", "references", multiple=True, metavar="EXPR",
              help="Another law to fit and compare (repeatable), e.g. 'E + A / N**alpha'.")
@click.option("--no-literature", is_flag=True, help="Leave out the human-derived law of an SLDBench task.")
@click.option("--starts", type=int, help="Multi-start count of the comparison fits (default: the run's).")
def command(run_dir: str, out: str, corpus: str | None, data: str | None, test_data: str | None,
            references: tuple[str, ...], no_literature: bool, starts: int | None) -> None:
    """Write the report of RUN_DIR (from ``sld discover --run-dir``): laws side by side, plots, provenance."""
    from sld.report.run_report import write_report

    files = write_report(run_dir, out, corpus=corpus, data=data, test_data=test_data, references=references,
                         literature=not no_literature, n_starts=starts,
                         progress=lambda line: click.echo(line, err=True))
    for law in files.report.laws:
        test = "–" if law.test is None else f"{law.test.r2:.4f}"
        click.echo(f"{law.name}: test R^2 {test} ({law.n_params} constants)")
    click.echo(f"wrote {files.html} and {files.markdown}")
