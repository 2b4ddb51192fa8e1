"""Read a run directory back: the task, the chosen law of every target with its constants per group, the candidates.

A run directory is what ``sld discover --run-dir D`` writes (``config.json``, ``candidates.jsonl``,
``result.json``; see docs/ARCHITECTURE.md). The laws are parsed again from ``result.json``'s expressions, with the
bounds their candidate carried, so the report predicts with exactly the constants the run chose.

The rows come back separately (:func:`load_rows`): SLDBench tasks by name from the corpus, user data from the
files recorded in ``config.json`` (or given on the command line). Reading the test rows here is safe: a report is
made after every choice.

Example
-------
>>> from sld.report.data import load_run
>>> run = load_run("runs/sft")  # doctest: +SKIP
>>> run.laws()[0].n_params  # doctest: +SKIP
3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sld.report.errors import ReportError, RunDirectoryError
from sld.search import Law, SplitArrays
from sld.search.candidates import Candidate, candidate_from_record, law_from_proposal
from sld.search.proposals import Proposal
from sld.tasks import Task

GroupConstants = dict[str, dict[str, float]]  # group -> constant -> value


@dataclass(frozen=True)
class Run:
    """A finished discovery run, as read from its directory.

    Attributes
    ----------
    path : Path
        The run directory.
    config : dict
        ``config.json``: task, engine settings, data digests and provenance.
    result : dict
        ``result.json``: the chosen law, its constants per target and group, test scores.
    records : list of dict
        ``candidates.jsonl``, one record per evaluated candidate (with its ``target``).
    task : Task
        The task the run searched.
    """

    path: Path
    config: dict[str, Any]
    result: dict[str, Any]
    records: list[dict[str, Any]]
    task: Task

    @property
    def targets(self) -> tuple[str, ...]:
        """Targets of the task, in order."""
        return self.task.targets

    @property
    def seed(self) -> int:
        """Seed of the run's search (0 when not recorded)."""
        return int(self.config.get("engine", {}).get("seed", 0))

    @property
    def n_starts(self) -> int:
        """Multi-start count the run fitted candidates with (6 when not recorded)."""
        return int(self.config.get("engine", {}).get("n_starts", 6))

    def expressions(self) -> dict[str, str]:
        """Return the chosen expression of every target."""
        law = self.result.get("law", {})
        expressions = law.get("expressions") or {}
        if not expressions and len(self.targets) == 1 and law.get("expression"):
            expressions = {self.targets[0]: law["expression"]}
        missing = [target for target in self.targets if target not in expressions]
        if missing:
            raise ReportError(f"{self.path / 'result.json'} has no law for target(s) {', '.join(missing)}.")
        return {target: str(expressions[target]) for target in self.targets}

    def shared(self, target: str) -> tuple[str, ...]:
        """Return the constants of a target's chosen law that take one value for all groups."""
        return tuple((self.result.get("law", {}).get("shared") or {}).get(target) or ())

    def candidates(self, target: str) -> list[Candidate]:
        """Return the evaluated candidates of one target, in evaluation order."""
        return [candidate_from_record(record) for record in self.records if record.get("target") == target]

    def chosen(self, target: str) -> Candidate | None:
        """Return the candidate record of a target's chosen law (``None`` if the log lacks it)."""
        expression = self.expressions()[target]
        shared = self.shared(target)
        matches = [
            c
            for c in self.candidates(target)
            if c.expression == expression and c.shared == shared and c.status == "ok"
        ]
        return min(matches, key=lambda c: c.objective) if matches else None

    def laws(self) -> list[Law]:
        """Parse the chosen law of every target over the task's features, with its candidate's bounds."""
        laws = []
        for target, expression in self.expressions().items():
            chosen = self.chosen(target)
            bounds = chosen.bounds if chosen is not None else {}
            laws.append(law_from_proposal(Proposal(expression, bounds=bounds), self.task.features))
        return laws

    def constants(self) -> dict[str, GroupConstants]:
        """Return ``{target: {group: {constant: value}}}`` of the final fits."""
        table = self.result.get("law", {}).get("constants") or {}
        return {target: {str(group): {str(name): float(value) for name, value in values.items()}
                         for group, values in table.get(target, {}).items()}
                for target in self.targets}


def load_run(path: str | Path) -> Run:
    """Read a run directory written by ``sld discover --run-dir``.

    Parameters
    ----------
    path : str or Path
        The run directory.

    Raises
    ------
    RunDirectoryError
        When the folder or its ``config.json`` / ``result.json`` is missing (e.g. a run killed before the end).
    """
    from sld.agent.rundir import RunDirectory
    from sld.agent.rundir import RunDirectoryError as UnreadableRun

    path = Path(path)
    try:
        directory = RunDirectory(path, create=False)
        # The result first: a run killed before the end has a config but no result, and is told to resume.
        result = directory.read_result().model_dump(mode="json")
        config = directory.read_config().model_dump(mode="json")
    except UnreadableRun as exc:
        raise RunDirectoryError(str(exc)) from exc
    records = [line.model_dump(mode="json") for line in directory.read_candidates()]
    if not isinstance(config.get("task"), dict):
        raise ReportError(f"{path / 'config.json'} has no task definition ('task').")
    task = Task.model_validate(config["task"])
    return Run(path=path, config=config, result=result, records=records, task=task)


@dataclass(frozen=True)
class Rows:
    """The rows a run was fitted on and scored on.

    Attributes
    ----------
    train : SplitArrays
        Training rows.
    test : SplitArrays or None
        Held-out rows with targets (``None`` when the run had none).
    source : str
        Where they were read from.
    verified : bool or None
        Whether their digests equal the ones the run recorded (``None``: no digest recorded).
    """

    train: SplitArrays
    test: SplitArrays | None
    source: str
    verified: bool | None


def load_rows(
    run: Run,
    *,
    corpus: str | Path | None = None,
    data: str | Path | None = None,
    test_data: str | Path | None = None,
) -> Rows:
    """Load the rows of a run: SLDBench tasks from the corpus, user data from its recorded (or given) files.

    Parameters
    ----------
    run : Run
        The run.
    corpus : str or Path, optional
        SLDBench folder (default: ``$SLD_CORPUS``, the cache, the hub).
    data, test_data : str or Path, optional
        Training and test files of a user-data run, overriding the paths in ``config.json``.

    Raises
    ------
    ReportError
        When a user-data run recorded no files and none are given.
    CorpusError
        When the files cannot be read.
    """
    from sld.agent.rundir import hash_rows
    from sld.corpus.embedded import EMBEDDED_TASK
    from sld.tasks.data import load_task_splits

    task = run.task
    recorded = run.config.get("data") or {}
    test: SplitArrays | None
    if task.name == EMBEDDED_TASK and data is None:
        train, test = load_task_splits(task)
        source = f"the embedded proxy runs ({task.name})"
    elif task.is_sldbench and data is None:
        train, test = load_task_splits(task, corpus=corpus)
        source = f"SLDBench {task.name} ({corpus or 'default corpus'})"
    else:
        paths = recorded.get("paths") or {}
        train_path = data or paths.get("train")
        test_path = test_data or (paths.get("test") if data is None else None)
        if not train_path:
            raise ReportError(
                f"{run.path / 'config.json'} records no data files for task '{task.name}'. "
                "Pass them with --data FILE [--test-data FILE]."
            )
        rows = _table_rows(task, train_path, require_targets=True)
        if rows is None:  # unreachable: required targets raise instead
            raise ReportError(f"{train_path} has no rows to fit.")
        train = rows
        test = _table_rows(task, test_path, require_targets=False) if test_path else None
        source = str(train_path) + (f", {test_path}" if test_path else "")
    verified: bool | None = None
    if recorded.get("train_sha256"):
        verified = recorded["train_sha256"] == hash_rows(train) and (
            not recorded.get("test_sha256") or (test is not None and recorded["test_sha256"] == hash_rows(test)))
    return Rows(train=train, test=test, source=source, verified=verified)


def _table_rows(task: Task, path: str | Path, *, require_targets: bool) -> SplitArrays | None:
    from sld.corpus import load_table, read_columns
    from sld.tasks.data import task_arrays

    columns = set(read_columns(path))
    group = task.group_column if task.group_column in columns else None
    if not set(task.targets) <= columns:
        if require_targets:
            missing = sorted(set(task.targets) - columns)
            raise ReportError(f"{path} lacks the target column(s) {', '.join(missing)} of task '{task.name}'.")
        return None  # rows to predict on, without targets: nothing to score or plot
    frame = load_table(path, features=task.features, targets=task.targets, group=group)
    return task_arrays(task, frame)


def law_predictions(law: Law, constants: GroupConstants, X: NDArray[np.float64],
                    groups: NDArray[np.str_]) -> NDArray[np.float64]:
    """Predict rows with one set of constants per group (``nan`` for groups without constants).

    Parameters
    ----------
    law : Law
        The law.
    constants : dict
        ``{group: {constant: value}}``.
    X : ndarray of shape (n, d)
        Features in the law's variable order.
    groups : ndarray of shape (n,)
        Group of every row.

    Returns
    -------
    ndarray of shape (n,)
    """
    predictions = np.full(len(X), np.nan)
    for group in np.unique(groups):
        values = constants.get(str(group))
        if not values or any(spec.name not in values for spec in law.constants):
            continue
        theta = np.array([values[spec.name] for spec in law.constants], dtype=float)
        rows = groups == group
        predictions[rows] = law.predict(X[rows], theta)
    return predictions


def finite_or_none(value: float | None) -> float | None:
    """Return ``value`` if it is a finite number, else ``None`` (for JSON and tables)."""
    return None if value is None or not math.isfinite(value) else float(value)
