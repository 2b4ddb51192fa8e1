"""The figures of a report, drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display).

- ``curves``: observed rows per group along the extrapolation axis, training and test rows marked, each law drawn
  from the smallest row out to the extrapolation target (the largest test row), the training range shaded;
- ``parity``: observed against predicted, per target and law;
- ``residuals``: observed minus predicted along the axis (or against the prediction), per target and law;
- ``front``: validation NMSE of every validated candidate against its number of constants, the chosen law and the
  comparison laws marked;
- ``bench_summary``: test R^2 per task of the run, the refitted human-derived law and the published systems.

Axes are logarithmic where the values are positive and span more than a decade (where power laws are straight).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sld.report.content import LawReport, TaskReport
from sld.report.data import law_predictions
from sld.search import ExpressionError, parse_law, score_predictions

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Array = NDArray[np.float64]

MAX_PANELS = 12
MAX_SERIES = 4
DPI = 110
TRAIN_STYLE: dict[str, Any] = {"marker": "o", "s": 18, "alpha": 0.75, "linewidths": 0}
TEST_STYLE: dict[str, Any] = {"marker": "s", "s": 34, "facecolors": "white", "linewidths": 1.4, "zorder": 4}
LAW_STYLES: tuple[dict[str, Any], ...] = ({"linestyle": "-", "linewidth": 2.0}, {"linestyle": "--", "linewidth": 1.5},
              {"linestyle": ":", "linewidth": 1.8}, {"linestyle": "-.", "linewidth": 1.5})
TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#d62728"
RC: dict[Any, Any] = {"font.size": 9, "axes.titlesize": 9, "axes.grid": True, "grid.alpha": 0.3,
                      "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8,
                      "legend.frameon": False}


@dataclass(frozen=True)
class Plot:
    """A figure written to disk.

    Attributes
    ----------
    path : Path
        The PNG file.
    title : str
        Heading above it.
    caption : str
        What it shows, one or two sentences.
    """

    path: Path
    title: str
    caption: str


@contextmanager
def _figure(path: Path, width: float, height: float) -> Iterator[Figure]:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")


def wide_positive(values: Array) -> bool:
    """Whether values are all positive and span more than a decade (then a log axis reads best)."""
    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool(np.all(finite > 0)) and float(finite.max() / finite.min()) > 10.0


def axis_column(report: TaskReport) -> int | None:
    """Return the feature column the curves are drawn along (``None`` when the task has no extrapolation axis).

    With several axis features, the one whose test rows reach furthest beyond the training rows, then the one
    with the most distinct values.
    """
    task, rows = report.run.task, report.rows
    if not task.extrapolation_axis or rows is None:
        return None
    columns = [task.features.index(name) for name in task.extrapolation_axis]
    if len(columns) == 1:
        return columns[0]

    def reach(column: int) -> tuple[float, int]:
        train = rows.train.X[:, column]
        beyond = 0.0
        if rows.test is not None and len(rows.test.X):
            top = float(train.max())
            beyond = (float(rows.test.X[:, column].max()) - top) / (abs(top) or 1.0)
        return beyond, int(np.unique(train).size)

    return max(columns, key=reach)


def _law_curve(law_report: LawReport, target_index: int, target: str, group: str, grid_X: Array) -> Array:
    law = law_report.laws[target_index]
    values = law_report.constants.get(target, {}).get(group)
    if not values or any(spec.name not in values for spec in law.constants):
        return np.full(len(grid_X), np.nan)
    theta = np.array([values[spec.name] for spec in law.constants], dtype=float)
    return law.predict(grid_X, theta)


def _band(report: TaskReport, target: str, group: str, grid_X: Array) -> tuple[Array, Array] | None:
    # The near-ties' curves (result.json "uncertainty"), drawn as the band between their lowest and highest.
    band = (report.run.result.get("uncertainty") or {}).get(target) or {}
    curves = []
    for text, constants in zip(band.get("laws") or (), band.get("constants") or (), strict=False):
        try:
            law = parse_law(text, report.run.task.features)
        except ExpressionError:
            continue
        with np.errstate(all="ignore"):
            curve = law_predictions(law, constants, grid_X, np.full(len(grid_X), group))
        if np.all(np.isfinite(curve)):
            curves.append(curve)
    if len(curves) < 2:
        return None
    stacked = np.vstack(curves)
    return stacked.min(axis=0), stacked.max(axis=0)


def _grid(low: float, high: float, log: bool, n: int = 200) -> Array:
    return np.geomspace(low, high, n) if log else np.linspace(low, high, n)


def _ordered_groups(report: TaskReport) -> list[str]:
    assert report.rows is not None
    test_groups = set() if report.rows.test is None else set(report.rows.test.groups.tolist())
    names = sorted(set(report.rows.train.groups.tolist()))
    return sorted(names, key=lambda g: (g not in test_groups, g))[:MAX_PANELS]


def _series(X: Array, column: int, is_test: NDArray[np.bool_]) -> list[NDArray[np.bool_]]:
    """Row masks of the series (rows with equal values of every feature but ``column``), best to draw first."""
    others = [c for c in range(X.shape[1]) if c != column]
    if not others:
        return [np.ones(len(X), dtype=bool)]
    keys = [tuple(np.round(row, 10)) for row in X[:, others]]
    masks = {key: np.array([k == key for k in keys]) for key in dict.fromkeys(keys)}
    ranked = sorted(masks.values(), key=lambda m: (not bool(np.any(m & is_test)), -int(m.sum())))
    return ranked[:MAX_SERIES]


def plot_curves(report: TaskReport, target_index: int, path: Path) -> Plot | None:
    """Draw every law along the extrapolation axis per group, out to the largest test row.

    Returns ``None`` when the task has no extrapolation axis or no rows.
    """
    column = axis_column(report)
    rows = report.rows
    if column is None or rows is None:
        return None
    task = report.run.task
    target = task.targets[target_index]
    groups = _ordered_groups(report)
    train, test = rows.train, rows.test
    log_x = wide_positive(train.X[:, column])
    log_y = wide_positive(train.Y[:, target_index])
    n_cols = min(4, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    with _figure(path, max(5.5, 3.4 * n_cols), 2.7 * n_rows + 0.6) as figure:
        axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False)).ravel()
        for ax, group in zip(axes, groups, strict=False):
            in_train = train.groups == group
            in_test = test.groups == group if test is not None else np.zeros(0, dtype=bool)
            X = np.vstack([train.X[in_train]] + ([test.X[in_test]] if test is not None else []))
            y = np.concatenate([train.Y[in_train, target_index]]
                               + ([test.Y[in_test, target_index]] if test is not None else []))
            is_test = np.arange(len(X)) >= int(in_train.sum())
            x = X[:, column]
            train_top = float(x[~is_test].max())
            low = float(x.min())
            if np.any(is_test):
                high = float(x[is_test].max())
            elif log_x and low > 0:
                high = train_top * (train_top / low) ** 0.25
            else:
                high = train_top + 0.25 * (train_top - low or 1.0)
            high = max(high, train_top)
            ax.axvspan(low, train_top, color="#f0f0f0", zorder=0)
            ax.axvline(train_top, color="grey", linewidth=0.8, linestyle=":")
            if high > train_top:
                # Name the region beyond the training rows: that is the part of each curve the law is chosen for.
                ax.text(train_top, 0.98, " extrapolated \u2192", transform=ax.get_xaxis_transform(), ha="left",
                        va="top", fontsize=7, color="#555555")
            series = _series(X, column, is_test)
            rest = ~np.logical_or.reduce(series)
            ax.scatter(x[rest & ~is_test], y[rest & ~is_test], color="#bbbbbb", **TRAIN_STYLE)
            ax.scatter(x[rest & is_test], y[rest & is_test], edgecolors="#999999", **TEST_STYLE)
            grid = _grid(low, high, log_x and low > 0)
            for index, mask in enumerate(series):
                color = palette(index % 10)
                ax.scatter(x[mask & ~is_test], y[mask & ~is_test], color=color, **TRAIN_STYLE)
                ax.scatter(x[mask & is_test], y[mask & is_test], edgecolors=color, **TEST_STYLE)
                first = X[np.flatnonzero(mask)[0]]
                grid_X = np.repeat(first[None, :], len(grid), axis=0)
                grid_X[:, column] = grid
                label = ", ".join(f"{task.features[c]}={first[c]:.3g}" for c in range(X.shape[1]) if c != column)
                band = _band(report, target, group, grid_X)
                if band is not None:
                    ax.fill_between(grid, band[0], band[1], color=color, alpha=0.15, linewidth=0, zorder=1)
                for k, (law_report, style) in enumerate(zip(report.laws, LAW_STYLES, strict=False)):
                    with np.errstate(all="ignore"):
                        curve = _law_curve(law_report, target_index, target, group, grid_X)
                    ax.plot(grid, curve, color=color, label=label if k == 0 and label else None, **style)
            if X.shape[1] > 1:
                ax.legend(fontsize=6.5, loc="best", handlelength=1.2)
            _limits(ax, y)
            if log_x and low > 0:
                ax.set_xscale("log")
            if log_y and np.all(y > 0):
                ax.set_yscale("log")
            ax.set_title(_short(group, 48))
            ax.set_xlabel(task.features[column])
            ax.set_ylabel(target)
        for ax in axes[len(groups):]:
            ax.set_visible(False)
        _legend(figure, report.laws)
    shown = f"{len(groups)} of {len(set(train.groups.tolist()))} groups" if len(groups) < len(
        set(train.groups.tolist())) else "every group"
    return Plot(path, f"{target} along {task.features[column]}, per group",
                f"Observed rows ({shown}; circles: training rows, open squares: test rows) and each law with the "
                f"group's constants, drawn out to the extrapolation target. The shaded band is the training range, the "
                f"part right of the dotted line is extrapolated; "
                f"colours are series of rows that share every other feature (up to {MAX_SERIES} per group, grey: "
                "the rest). A light band, where shown, spans the predictions of the search's near-ties (laws the "
                "validation could not separate from the chosen one): the uncertainty of the extrapolation.")


def _limits(ax: Axes, y: Array) -> None:
    # Laws that run away beyond the data would otherwise squash the rows into a line.
    finite = y[np.isfinite(y)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        if low > 0 and high / low > 10:
            ax.set_ylim(low / 1.5, high * 1.5)
        else:
            pad = 0.15 * (high - low or abs(high) or 1.0)
            ax.set_ylim(low - pad, high + pad)


def _legend(figure: Figure, laws: Sequence[LawReport]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="#555555", marker="o", linestyle="", label="training rows"),
               Line2D([], [], color="#555555", marker="s", markerfacecolor="white", linestyle="", label="test rows"),
               Patch(facecolor="#f0f0f0", edgecolor="none", label="training range")]
    for law_report, style in zip(laws, LAW_STYLES, strict=False):
        handles.append(Line2D([], [], color="#333333", label=f"{law_report.name} law", **style))
    # One row where the figure is wide enough (several panels), else rows of three, so no entry is cut off.
    columns = len(handles) if figure.get_figwidth() >= 2.0 * len(handles) else 3
    figure.legend(handles=handles, loc="outside lower center", ncol=columns)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_parity(report: TaskReport, path: Path) -> Plot | None:
    """Observed against predicted for every target and law; training and test rows marked."""
    rows = report.rows
    laws = [law for law in report.laws if law.train_predictions is not None]
    if rows is None or not laws:
        return None
    targets = report.run.task.targets
    with _figure(path, 3.3 * len(laws), 2.9 * len(targets) + 0.4) as figure:
        axes = figure.subplots(len(targets), len(laws), squeeze=False)
        for i, target in enumerate(targets):
            for j, law in enumerate(laws):
                ax = axes[i, j]
                observed = [rows.train.Y[:, i]]
                predicted = [law.train_predictions[:, i]] if law.train_predictions is not None else []
                ax.scatter(rows.train.Y[:, i], predicted[0], color=TRAIN_COLOR, **TRAIN_STYLE)
                if rows.test is not None and law.test_predictions is not None:
                    observed.append(rows.test.Y[:, i])
                    predicted.append(law.test_predictions[:, i])
                    ax.scatter(rows.test.Y[:, i], law.test_predictions[:, i], edgecolors=TEST_COLOR, **TEST_STYLE)
                values = np.concatenate(observed)
                low, high = float(values.min()), float(values.max())
                pad = 0.05 * (high - low or 1.0)
                ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linewidth=0.8)
                _limits(ax, values)
                ax.set_xlim(low - pad, high + pad)
                ax.set_xlabel(f"observed {target}")
                ax.set_ylabel("predicted")
                title = f"{law.name} law"
                if rows.test is not None and law.test_predictions is not None:
                    scores = score_predictions(rows.test.Y[:, i], law.test_predictions[:, i])
                    title += f" (test R² {_fmt(scores.r2)})"
                ax.set_title(title if len(targets) == 1 else f"{target}\n{title}")
        _legend(figure, [])
    return Plot(path, "Observed against predicted",
                "Every row, predicted with its group's constants (circles: training rows, open squares: test "
                "rows). Points on the diagonal are predicted exactly.")


def plot_residuals(report: TaskReport, path: Path) -> Plot | None:
    """Observed minus predicted along the extrapolation axis (or against the prediction), per target and law."""
    rows = report.rows
    laws = [law for law in report.laws if law.train_predictions is not None]
    if rows is None or not laws:
        return None
    task = report.run.task
    column = axis_column(report)
    with _figure(path, 3.3 * len(laws), 2.6 * len(task.targets) + 0.4) as figure:
        axes = figure.subplots(len(task.targets), len(laws), squeeze=False, sharey="row")
        for i, target in enumerate(task.targets):
            for j, law in enumerate(laws):
                ax = axes[i, j]
                assert law.train_predictions is not None
                splits = [(rows.train, law.train_predictions, True)]
                if rows.test is not None and law.test_predictions is not None:
                    splits.append((rows.test, law.test_predictions, False))
                for split, predictions, is_train in splits:
                    x = split.X[:, column] if column is not None else predictions[:, i]
                    residual = split.Y[:, i] - predictions[:, i]
                    style = TRAIN_STYLE if is_train else TEST_STYLE
                    color = {"color": TRAIN_COLOR} if is_train else {"edgecolors": TEST_COLOR}
                    ax.scatter(x, residual, **color, **style)
                ax.axhline(0.0, color="grey", linewidth=0.8)
                if column is not None and wide_positive(rows.train.X[:, column]):
                    ax.set_xscale("log")
                ax.set_xlabel(task.features[column] if column is not None else f"predicted {target}")
                ax.set_ylabel(f"observed − predicted {target}" if j == 0 else "")
                ax.set_title(f"{law.name} law" if len(task.targets) == 1 else f"{target}\n{law.name} law")
        _legend(figure, [])
    return Plot(path, "Residuals", "Observed minus predicted for every row (circles: training rows, open squares: "
                "test rows); a trend in the test rows is a law that bends the wrong way beyond the data.")


def plot_front(report: TaskReport, path: Path) -> Plot | None:
    """Plot validation NMSE against the number of constants of every validated candidate, per target."""
    run = report.run
    per_target = {target: [c for c in run.candidates(target) if c.status == "ok" and math.isfinite(c.validation_r2)]
                  for target in run.targets}
    if not any(per_target.values()):
        return None
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    palette = matplotlib.colormaps["tab10"]
    sources = sorted({c.source for candidates in per_target.values() for c in candidates})
    colors = {source: palette(index % 10) for index, source in enumerate(sources)}
    n_cols = min(len(run.targets), 3)
    n_rows = math.ceil(len(run.targets) / n_cols)
    rng = np.random.default_rng(0)
    expressions = run.expressions()
    extra_n = [law.n_params for law in report.laws]
    with _figure(path, max(6.5, 4.2 * n_cols), 3.3 * n_rows + 0.7) as figure:
        axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False)).ravel()
        for ax, target in zip(axes, run.targets, strict=False):
            candidates = per_target[target]
            n = np.array([c.n_params for c in candidates], dtype=float)
            # 1 - validation R^2 is the mean NMSE over the folds: the same measure for candidates and comparison laws.
            error = np.maximum([1.0 - c.validation_r2 for c in candidates], 1e-12)
            jitter = rng.uniform(-0.15, 0.15, len(n))
            for source in sources:
                mask = np.array([c.source == source for c in candidates])
                if mask.any():
                    ax.scatter(n[mask] + jitter[mask], error[mask], color=colors[source], s=16, alpha=0.7,
                               linewidths=0)
            if len(n):
                levels = np.unique(n)
                best = np.minimum.accumulate([error[n == k].min() for k in levels])
                # Extended half a constant past the last level so that its drop shows.
                ax.step([*levels, levels[-1] + 0.5], [*best, best[-1]], where="post", color="black",
                        linewidth=1.0, alpha=0.7)
            chosen = [c for c in candidates if c.expression == expressions[target]]
            if chosen:
                c = min(chosen, key=lambda item: item.objective)
                ax.scatter([c.n_params], [max(1.0 - c.validation_r2, 1e-12)], marker="*", s=260, color="gold",
                           edgecolors="black", linewidths=0.8, zorder=5)
            shown = [float(v) for v in error]
            for offset, (law_report, marker) in enumerate(zip(report.laws[1:], ("D", "P", "X"), strict=False)):
                scores = law_report.validation_by_target.get(target)
                index = run.targets.index(target)
                if scores is not None and not scores.failed:
                    # Beside the chosen law's column, so that a comparison law with its score stays visible.
                    error_value = max(1.0 - scores.r2, 1e-12)
                    ax.scatter([law_report.laws[index].n_params + 0.22 * (offset + 1)], [error_value],
                               marker=marker, s=70, color="white", edgecolors="black", linewidths=1.2, zorder=6)
                    shown.append(error_value)
            ax.set_yscale("log")
            if shown:
                ax.set_ylim(min(shown) / 1.6, max(shown) * 1.6)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            span = [*n.tolist(), *extra_n]
            ax.set_xlim(min(span) - 0.6, max(span) + 0.6)
            ax.set_xlabel("constants per group")
            ax.set_ylabel("validation error (1 − R²)")
            rejected = sum(1 for c in run.candidates(target) if c.status != "ok")
            title = f"{len(candidates)} validated, {rejected} rejected or failed"
            ax.set_title(title if len(run.targets) == 1 else f"{target}: {title}")
        for ax in axes[len(run.targets):]:
            ax.set_visible(False)
        handles = [Line2D([], [], marker="o", color=colors[s], linestyle="", label=s) for s in sources]
        handles.append(Line2D([], [], color="black", label="best with at most k constants"))
        handles.append(Line2D([], [], marker="*", color="gold", markeredgecolor="black", markersize=13, linestyle="",
                              label="chosen law"))
        for law_report, marker in zip(report.laws[1:], ("D", "P", "X"), strict=False):
            handles.append(Line2D([], [], marker=marker, color="white", markeredgecolor="black", linestyle="",
                                  label=f"{law_report.name} law"))
        figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4))
    return Plot(path, "Candidate front",
                "Every validated candidate: its validation error (1 − R², i.e. the mean NMSE over the extrapolation "
                "folds inside the training rows; lower is better) against its constants per group, coloured by "
                "where it was proposed. The search ranks by its objective (candidates.jsonl), which also weighs "
                "the worst fold and the number of constants.")


def plot_bench_summary(rows: Sequence[tuple[str, dict[str, float | None]]], path: Path) -> Plot:
    """Test R^2 per task (clipped to [-1, 1]) of several systems, as horizontal bars.

    Parameters
    ----------
    rows : sequence of (task, {system: r2 or None})
        One entry per task; missing values are left out.
    path : Path
        PNG to write.
    """
    import matplotlib

    systems = list(dict.fromkeys(system for _, values in rows for system in values))
    palette = matplotlib.colormaps["tab10"]
    height = 0.8 / max(len(systems), 1)
    with _figure(path, 8.0, 0.55 * len(rows) * max(1, len(systems) / 2.5) + 1.2) as figure:
        ax = figure.subplots()
        for k, system in enumerate(systems):
            positions, values = [], []
            for i, (_, scores) in enumerate(rows):
                value = scores.get(system)
                if value is not None:
                    positions.append(i + (k - (len(systems) - 1) / 2) * height)
                    values.append(max(-1.0, min(1.0, value)) if math.isfinite(value) else -1.0)
            ax.barh(positions, values, height=height, color=palette(k % 10), label=system)
        ax.set_yticks(range(len(rows)), [task for task, _ in rows])
        ax.invert_yaxis()
        ax.set_xlim(-1.0, 1.0)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel("test R² (clipped to [-1, 1])")
        figure.legend(loc="outside lower center", ncol=min(len(systems), 4))
    return Plot(path, "Test R² per task", "Official test R² of each task, clipped to [-1, 1] as the SLDBench "
                "leaderboard does; longer bars to the right are better.")


def formula_png(latex: str, path: Path, *, fontsize: float = 15, max_width_px: int = 880) -> bool:
    """Render a LaTeX formula with matplotlib's mathtext; return ``False`` if mathtext cannot parse it.

    A formula wider than ``max_width_px`` at ``fontsize`` is drawn smaller (down to 10 pt) so that it fits a page.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"mathtext.fontset": "cm"}):
        for attempt in range(2):
            figure = Figure(figsize=(0.1, 0.1), dpi=DPI)
            FigureCanvasAgg(figure)
            text = figure.text(0.0, 0.0, f"${latex}$", fontsize=fontsize)
            try:
                width = text.get_window_extent().width
                if attempt == 0 and width > max_width_px:
                    fontsize = max(10.0, fontsize * max_width_px / width)
                    continue
                figure.savefig(path, format="png", bbox_inches="tight", pad_inches=0.04, transparent=True)
            except ValueError:  # mathtext cannot parse it
                path.unlink(missing_ok=True)
                return False
            break
    return True


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "failed" if value is not None else "–"
    return f"{value:.4f}"


def task_plots(report: TaskReport, folder: Path) -> list[Plot]:
    """Draw every figure of a run's report into ``folder`` and return them in reading order."""
    plots: list[Plot | None] = []
    for index, target in enumerate(report.run.task.targets):
        plots.append(plot_curves(report, index, folder / f"curves_{_file_name(target)}.png"))
    plots.append(plot_parity(report, folder / "parity.png"))
    plots.append(plot_residuals(report, folder / "residuals.png"))
    plots.append(plot_front(report, folder / "front.png"))
    return [plot for plot in plots if plot is not None]


def _file_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:60]
