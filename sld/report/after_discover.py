"""What ``sld discover`` leaves behind by default: a run directory, and the report of the run inside it.

A newcomer's first ``sld discover`` should end with a picture of the law, not only its text: unless ``--run-dir``
is given the run goes to ``./sld-runs/<task>-<time>/``, and unless ``--no-report`` its HTML and Markdown report
(``sld report``'s, with the human-derived law beside the chosen one where the task has one) is written to
``<run dir>/report/``. For example::

    sld discover --budget-s 60   # last line: report: sld-runs/proxy_scaling_law-<time>/report/index.html
    sld discover --data runs.csv --features N,D --target loss --run-dir runs/mine --no-report
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sld.corpus.errors import CorpusError
from sld.report.errors import ReportError
from sld.report.run_report import ReportFiles, write_report
from sld.search.errors import SearchError
from sld.tasks.errors import TaskError

RUNS_FOLDER = Path("sld-runs")
REPORT_FOLDER = "report"


def default_run_dir(task_name: str, *, root: Path = RUNS_FOLDER, now: datetime | None = None) -> Path:
    """Return a new folder name for a run of ``task_name``: ``root/<task>-<YYYYmmdd-HHMMSS>`` (UTC).

    Parameters
    ----------
    task_name : str
        The task (for user data, the data file's stem).
    root : Path, default Path("sld-runs")
        Parent folder, relative to the working directory.
    now : datetime, optional
        The time to name the run by; default the current time.

    Returns
    -------
    Path
        A path that does not exist yet (``-2``, ``-3``... appended when two runs start in the same second).

    Examples
    --------
    >>> default_run_dir("sft_scaling_law", root=Path("/nonexistent"), now=datetime(2026, 12, 1, 8, 30, tzinfo=UTC))
    PosixPath('/nonexistent/sft_scaling_law-20261201-083000')
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = root / f"{task_name}-{stamp}"
    candidate, suffix = base, 2
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


def report_run(run_dir: Path, *, corpus: str | None = None,
               progress: Callable[[str], None] = lambda line: None) -> ReportFiles | None:
    """Write the report of a finished run into ``run_dir/report/`` (``index.html``, ``report.md``, figures).

    Parameters
    ----------
    run_dir : Path
        A run directory written by ``sld discover``; its ``config.json`` says where its rows are.
    corpus : str, optional
        SLDBench folder, for an SLDBench task's rows.
    progress : callable
        Receives progress lines, and the warning when no report could be written.

    Returns
    -------
    ReportFiles or None
        What was written (``html`` is the page to open); ``None`` when the report failed, since the discovery
        itself succeeded and is kept in ``run_dir`` (``sld report`` can be run on it later).
    """
    try:
        return write_report(run_dir, run_dir / REPORT_FOLDER, corpus=corpus, progress=progress)
    except (CorpusError, ReportError, SearchError, TaskError) as exc:
        progress(f"warning: no report ({exc}); the run is kept in {run_dir}: try `sld report {run_dir} --out DIR`")
        return None
