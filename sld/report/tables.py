"""The tables of a run's report as plain cells, shared by the Markdown and HTML renderings.

Formulas are left out of these cells (each rendering shows LaTeX its own way); every other cell is text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sld.corpus.embedded import EMBEDDED_TASK
from sld.report.content import LawReport, TaskReport
from sld.search import Scores


@dataclass(frozen=True)
class Table:
    """A table of text cells.

    Attributes
    ----------
    header : list of str
        Column names.
    rows : list of list of str
        One list of cells per row, as long as ``header``.
    """

    header: list[str]
    rows: list[list[str]]


def number(value: float | None, digits: int = 4) -> str:
    """Format a score: fixed decimals, ``failed`` for non-finite values, ``–`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if not math.isfinite(value):
        return "failed"
    return f"{value:.{digits}f}"


def constant(value: float) -> str:
    """Format a fitted constant with 5 significant digits."""
    return f"{value:.5g}"


SCORE_HEADER = ["validation R²", "validation NMSE", "validation NMAE", "test R²", "test NMSE", "test NMAE"]


def score_cells(law: LawReport) -> list[str]:
    """Return the six score cells of a law (validation then test: R², NMSE, NMAE)."""
    cells: list[str] = []
    for scores in (law.validation, law.test):
        cells.extend(_scores(scores))
    return cells


def _scores(scores: Scores | None) -> list[str]:
    if scores is None:
        return ["–"] * 3
    if scores.failed:
        return ["failed", "–", "–"]
    return [number(scores.r2), number(scores.nmse), number(scores.nmae)]


def constants_table(law: LawReport, index: int, target: str) -> Table | None:
    """Return one row per group with the constants of the law's ``index``-th target (``None`` when none)."""
    groups = law.constants.get(target) or {}
    names = [spec.name for spec in law.laws[index].constants]
    if not groups or not names:
        return None
    rows = [[group] + [constant(values[name]) if name in values else "–" for name in names]
            for group, values in groups.items()]
    return Table(["group", *names], rows)


def anchors_table(report: TaskReport) -> Table | None:
    """Return the published test R^2 of the task beside this report's laws (``None`` when none is published)."""
    if not report.anchors:
        return None
    rows = [[f"{law.name} law (this report)", number(law.test.r2 if law.test else None)] for law in report.laws]
    rows += [[system, number(value)] for system, value in report.anchors.items()]
    return Table(["system", "test R²"], rows)


def candidates_table(report: TaskReport, target: str, top: int = 10) -> Table:
    """Return the best validated candidates of a target, as the search ranked them (by its objective)."""
    from sld.search.engine import SearchState

    state = SearchState(candidates=report.run.candidates(target))
    chosen = report.run.expressions()[target]
    rows = []
    for rank, candidate in enumerate(state.ranked()[:top], start=1):
        mark = " (chosen)" if candidate.expression == chosen else ""
        rows.append([f"{rank}{mark}", number(candidate.validation_r2), number(candidate.objective),
                     str(candidate.n_params), candidate.source, candidate.expression])
    return Table(["rank", "validation R²", "search objective", "constants", "source", "expression"], rows)


def provenance_table(report: TaskReport) -> Table:
    """Return the run's provenance: settings, seed, data digests, versions, time and LLM usage."""
    run = report.run
    config, result = run.config, run.result
    provenance: dict[str, Any] = config.get("provenance") or {}
    engine: dict[str, Any] = config.get("engine") or {}
    data: dict[str, Any] = config.get("data") or {}
    rows = [
        ["run directory", str(run.path)],
        ["task", f"{run.task.name} ({_task_source(run.task.name, run.task.is_sldbench)})"],
        ["started", str(provenance.get("started", "–"))],
        ["search seconds", number(result.get("seconds"), 1)],
        ["seed", str(engine.get("seed", "–"))],
        ["engine", ", ".join(f"{key}={value}" for key, value in engine.items() if key != "seed") or "–"],
        ["constant budget", str(config.get("max_params") or run.task.max_params)],
        ["candidates evaluated", str(result.get("candidates_evaluated", len(run.records)))],
        ["proposals per source", ", ".join(f"{k}: {v}" for k, v in (result.get("proposals") or {}).items()) or "–"],
    ]
    for split in ("train", "test"):
        if data.get(f"{split}_sha256"):
            rows.append([f"{split} rows (sha256)", f"{data.get(f'{split}_rows')} ({data[f'{split}_sha256']})"])
    if data.get("paths"):
        rows.append(["data files", ", ".join(f"{k}: {v}" for k, v in data["paths"].items() if v)])
    if report.rows is not None:
        verified = {True: "yes", False: "NO: the rows differ", None: "no digest recorded"}[report.rows.verified]
        rows.append(["rows of this report", f"{report.rows.source}; same as the run's: {verified}"])
    # An offline run's summary carries an empty LLM account; it says "none" below instead.
    llm_keys = () if result.get("proposer", "offline") == "offline" else ("llm", "llm_usage", "usage")
    for key in llm_keys:
        for source in (result, config):
            if source.get(key):
                rows.append([f"LLM usage ({key})", json.dumps(source[key], sort_keys=True)])
                break
    if not any(row[0].startswith("LLM") for row in rows):
        llm = (result.get("proposals") or {}).get("llm")
        rows.append(["LLM usage", f"{llm} proposals" if llm else "none (offline search)"])
    rows.append(["python", f"{provenance.get('python', '–')} on {provenance.get('platform', '–')}"])
    versions = provenance.get("versions") or {}
    rows.append(["packages", ", ".join(f"{name} {version}" for name, version in versions.items() if version) or "–"])
    return Table(["field", "value"], rows)


def _task_source(name: str, is_sldbench: bool) -> str:
    # Where a run's rows came from: an SLDBench task, the proxy runs embedded in the package, or the user's files.
    if is_sldbench:
        return "SLDBench"
    return "embedded proxy runs" if name == EMBEDDED_TASK else "user data"
