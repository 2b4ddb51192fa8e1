"""What a report shows: the discovered law and the laws it is compared with, scored identically.

Every law is scored twice: on the validation folds inside the training rows (the folds the search chose by, fitted
per group on each fold's smaller part) and on the test rows (fitted per group on all training rows). The
discovered law is predicted with the constants the run chose; the human-derived law of an SLDBench task and any
reference law are fitted here with the run's seed and multi-start count. Nothing here feeds back into a choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from sld.report.data import GroupConstants, Rows, Run, law_predictions
from sld.search import FitConfig, Law, Scores, SplitArrays, fit_law_grouped, parse_law, score_predictions
from sld.search.engine import make_folds
from sld.search.selection import Fold, validate_law

Array = NDArray[np.float64]
Progress = Callable[[str], None]


@dataclass
class LawReport:
    """One law of the comparison, with its constants, scores and predictions.

    Attributes
    ----------
    name : str
        ``"discovered"``, ``"human-derived"`` or ``"reference"`` (numbered when several).
    citation : str
        Where the law comes from.
    laws : tuple of Law
        One per target.
    constants : dict
        ``{target: {group: {constant: value}}}`` fitted on all training rows.
    validation : Scores or None
        Mean over targets of the mean over validation folds.
    validation_by_target : dict
        ``{target: Scores}``, the same per target.
    test : Scores or None
        Official score on the test rows.
    train_predictions, test_predictions : ndarray of shape (n, k) or None
        Predictions of the training and test rows.
    """

    name: str
    citation: str
    laws: tuple[Law, ...]
    constants: dict[str, GroupConstants] = field(default_factory=dict)
    validation: Scores | None = None
    validation_by_target: dict[str, Scores] = field(default_factory=dict)
    test: Scores | None = None
    train_predictions: Array | None = None
    test_predictions: Array | None = None

    @property
    def n_params(self) -> int:
        """Constants per group of the largest per-target law."""
        return max(law.n_params for law in self.laws)


@dataclass
class TaskReport:
    """Everything a run's report shows.

    Attributes
    ----------
    run : Run
        The run.
    rows : Rows or None
        Its training and test rows (``None``: tables only, no data plots).
    laws : list of LawReport
        The discovered law first, then the human-derived and reference laws.
    anchors : dict
        Published test R^2 of the task per system (SLDBench leaderboard), when found.
    anchors_source : str or None
        File the anchors came from.
    notes : list of str
        Caveats to show (missing data, digests that differ...).
    """

    run: Run
    rows: Rows | None
    laws: list[LawReport]
    anchors: dict[str, float] = field(default_factory=dict)
    anchors_source: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def discovered(self) -> LawReport:
        """The run's law."""
        return self.laws[0]


def law_latex(law: Law) -> str:
    r"""Return a law in LaTeX with variables upright and spelled out, and products explicit.

    Examples
    --------
    >>> from sld.search import parse_law
    >>> print(law_latex(parse_law("A * num_params**(-alpha) + E", ["num_params"])))
    A \cdot \mathrm{num\_params}^{- \alpha} + E
    """
    import sympy

    names = {symbol: "\\mathrm{" + symbol.name.replace("_", r"\_") + "}"
             for symbol in law.expr.free_symbols if isinstance(symbol, sympy.Symbol) and symbol.name in law.variables}
    return str(sympy.latex(law.expr, symbol_names=names, mul_symbol="dot"))


def fold_scores(law: Law, X: Array, y: Array, groups: NDArray[np.str_], folds: Sequence[Fold], *,
                config: FitConfig, shared: frozenset[str] = frozenset()) -> Scores:
    """Return the mean over validation folds of R^2, NMSE and NMAE, by the search's own rule.

    The folds are fitted and scored by :func:`sld.search.selection.validate_law`, which the search ranks by; only
    its early stop for hopeless candidates is off, so a literature law that extrapolates badly still gets numbers.
    """
    validation = validate_law(law, X, y, groups, folds, config=config, hopeless_r2=-math.inf, shared=shared)
    if validation.failed:
        return Scores.failure(f"validation: {validation.message}")
    return Scores(validation.r2, float(np.mean(validation.fold_nmse)), float(np.mean(validation.fold_nmae)))


def _mean_scores(per_target: Sequence[Scores]) -> Scores:
    failed = [s for s in per_target if s.failed]
    if failed:
        return Scores.failure(failed[0].message)
    return Scores(float(np.mean([s.r2 for s in per_target])), float(np.mean([s.nmse for s in per_target])),
                  float(np.mean([s.nmae for s in per_target])))


def _validation(report: LawReport, run: Run, train: SplitArrays, config: FitConfig, *,
                discovered: bool = False) -> None:
    from sld.tasks.problems import task_problems

    for index, problem in enumerate(task_problems(run.task, train, max_params=run.config.get("max_params"))):
        folds = make_folds(problem, run.seed)
        shared = frozenset(run.shared(problem.target)) if discovered else frozenset()
        report.validation_by_target[problem.target] = fold_scores(
            report.laws[index], problem.X, problem.y, problem.groups, folds, config=config, shared=shared)
    report.validation = _mean_scores(list(report.validation_by_target.values()))


def _test(report: LawReport, test: SplitArrays | None) -> None:
    if test is None or report.test_predictions is None or not len(test.X):
        return
    if not np.all(np.isfinite(report.test_predictions)):
        report.test = Scores.failure("some test rows have no finite prediction (a group without constants?)")
    else:
        report.test = score_predictions(test.Y, report.test_predictions)


def discovered_report(run: Run, rows: Rows | None, config: FitConfig) -> LawReport:
    """Score the run's chosen laws with the constants it chose (validation folds refitted like the search did)."""
    laws = tuple(run.laws())
    constants = run.constants()
    report = LawReport(name="discovered", citation=f"sld discover, run {run.path.name}", laws=laws,
                       constants=constants)
    if rows is None:
        # No rows: the run's own numbers (the validation of its chosen candidates, the test score it recorded).
        chosen = [run.chosen(target) for target in run.targets]
        if all(c is not None for c in chosen):
            report.validation_by_target = {t: Scores(c.validation_r2, c.validation_nmse, math.nan)
                                           for t, c in zip(run.targets, chosen, strict=True) if c is not None}
            report.validation = _mean_scores(list(report.validation_by_target.values()))
        result = run.result
        if result.get("test_r2") is not None:
            report.test = Scores(float(result["test_r2"]), float(result.get("test_nmse") or math.nan),
                                 float(result.get("test_nmae") or math.nan))
        return report
    report.train_predictions = _predict(laws, constants, run.targets, rows.train)
    if rows.test is not None:
        report.test_predictions = _predict(laws, constants, run.targets, rows.test)
    _validation(report, run, rows.train, config, discovered=True)
    _test(report, rows.test)
    return report


def _predict(laws: Sequence[Law], constants: dict[str, GroupConstants], targets: Sequence[str],
             split: SplitArrays) -> Array:
    columns = [law_predictions(law, constants.get(target, {}), split.X, split.groups)
               for law, target in zip(laws, targets, strict=True)]
    return np.column_stack(columns)


def fitted_report(name: str, citation: str, laws: Sequence[Law], run: Run, rows: Rows,
                  config: FitConfig) -> LawReport:
    """Fit a law per group on all training rows (one law per target) and score it like the discovered one."""
    report = LawReport(name=name, citation=citation, laws=tuple(laws))
    train_columns, test_columns = [], []
    for index, (law, target) in enumerate(zip(laws, run.targets, strict=True)):
        fit = fit_law_grouped(law, rows.train.X, rows.train.Y[:, index], rows.train.groups, config=config)
        names = [spec.name for spec in law.constants]
        report.constants[target] = {group: dict(zip(names, map(float, result.params), strict=True))
                                    for group, result in fit.fits.items() if result.params is not None}
        train_columns.append(fit.predict(law, rows.train.X, rows.train.groups))
        if rows.test is not None:
            test_columns.append(fit.predict(law, rows.test.X, rows.test.groups))
    report.train_predictions = np.column_stack(train_columns)
    report.test_predictions = np.column_stack(test_columns) if test_columns else None
    _validation(report, run, rows.train, config)
    _test(report, rows.test)
    return report


def build_task_report(
    run: Run,
    rows: Rows | None,
    *,
    references: Sequence[str] = (),
    literature: bool = True,
    corpus: str | None = None,
    n_starts: int | None = None,
    progress: Progress = lambda message: None,
) -> TaskReport:
    """Score the discovered law and the laws it is compared with.

    Parameters
    ----------
    run : Run
        The run.
    rows : Rows or None
        Its rows; without them only the run's recorded numbers are shown.
    references : sequence of str
        More laws to compare (expressions over the task's features; the same form for every target).
    literature : bool
        Whether to add the human-derived law of an SLDBench task.
    corpus : str, optional
        SLDBench folder, where the published anchors are looked up beside.
    n_starts : int, optional
        Multi-start count of the fits (default: the run's).
    progress : callable
        Receives progress lines.
    """
    from sld.anchors import load_anchors

    config = FitConfig(n_starts=n_starts or run.n_starts, seed=run.seed)
    notes: list[str] = []
    progress(f"report {run.task.name}: scoring the discovered law")
    laws = [discovered_report(run, rows, config)]
    if rows is None:
        notes.append("The data could not be loaded, so there are no plots of the data and no comparison laws; "
                     "the scores are the ones the run recorded.")
    else:
        if rows.verified is False:
            notes.append("The rows loaded for this report differ from the ones the run recorded (digests differ).")
        from sld.tasks.literature import has_human_law, human_law

        if literature and has_human_law(run.task.name):
            published = human_law(run.task.name)
            progress(f"report {run.task.name}: fitting the human-derived law ({published.citation})")
            laws.append(fitted_report("human-derived", published.citation, published.laws, run, rows, config))
        for index, text in enumerate(references, start=1):
            name = "reference" if len(references) == 1 else f"reference {index}"
            law = parse_law(text, run.task.features)
            laws.append(fitted_report(name, text, [law] * len(run.targets), run, rows, config))
    anchors = load_anchors(corpus) if run.task.is_sldbench else None
    table = {system: value for system, values in anchors.r2.items()
             if (value := values.get(run.task.name)) is not None} if anchors else {}
    return TaskReport(run=run, rows=rows, laws=laws, anchors=table,
                      anchors_source=anchors.source if anchors else None, notes=notes)
