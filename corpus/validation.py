"""Check experiment tables at the boundary, before any law sees them.

A pydantic model checks the column spec (which columns are features, targets, the group); vectorized pandas
checks then look at the rows. Every problem becomes a one-line ``SchemaError`` that names the file, the column
and the first bad row (1-based data row, and its group) and says how to fix it, for example (one line)::

    train.csv: column 'lossx' not found (columns: N, D, loss). Did you mean 'loss'?
    Fix the name with --target loss.

Training rows a search will run on get the up-front checks too (``training=True``), so that data no law can make
sense of fails before the first round rather than after it: a non-positive value in a size column, a constant
feature, too few rows per group for the constant budget; a value more than 6 orders of magnitude from its
column's median is a ``DataWarning``. For example::

    sld discover --data bad.csv --features N,D --target loss
    error: bad.csv: column 'N' is a size (the laws take its log or a power of it), but row 3 has -100000000.0 ...
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SchemaError, closest_name

Role = Literal["feature", "target", "group"]

# How the CLI spells each role's flag, so that a message can say exactly what to change.
_FLAG_HINT: dict[Role, str] = {"feature": "--features", "target": "--target", "group": "--group"}
_MAX_LISTED_COLUMNS = 20

# Words that name a size in scaling-law columns (N, D, C are the field's notation for parameters, data, compute).
# A column named with a log ("log_flops") holds exponents, which may be negative, so it is not a size.
_SIZE_NAMES = frozenset({"n", "d", "c"})
_SIZE_WORDS = frozenset(
    {"param", "params", "parameter", "parameters", "token", "tokens", "size", "flops", "compute", "step", "steps",
     "example", "examples", "sample", "samples", "characters", "experts", "bsz", "batch", "width", "depth", "layers"}
)
_LOG_WORDS = frozenset({"log", "ln", "log10", "log2"})
# A feature whose positive values span more than this ratio is a "scale" to the data profile
# (search/profile.py), which every power-law and log family is written over.
_SCALE_RATIO = 3.0
# The share of positive values above which the rest look like mistakes rather than a real-valued column.
_MOSTLY_POSITIVE = 0.75
OUTLIER_DECADES = 6.0
# Rows a group needs beyond its constants: one degree of freedom left after the fit, and one row to hold out.
SPARE_ROWS = 2


class DataWarning(UserWarning):
    """A value that is allowed but probably wrong (e.g. many orders of magnitude from the rest of its column)."""


class ColumnSpec(BaseModel):
    """Which columns of a table are features, targets and the group, and what their values must satisfy.

    Parameters
    ----------
    features : tuple of str
        Input columns of the law, at least one.
    targets : tuple of str, default ()
        Predicted columns; empty for a table of inputs to predict on.
    group : str or None, default None
        Column whose values each get their own constants; ``None`` fits all rows together.
    positive : tuple of str, default ()
        Features or targets that must be > 0 (the law takes a log or a power of them).
    min_rows : int, default 1
        Fewest rows allowed (per group when ``group`` is set), usually the number of constants.
    max_params : int or None, default None
        Constant budget of a search; when set, each group needs ``max_params + 2`` rows (and at least
        ``min_rows``), and a short group's message names the ``--max-params`` that would fit.
    training : bool, default False
        Run the up-front checks for rows a search fits: sizes positive, no constant feature, outliers warned.
    allow_nonpositive : tuple of str, default ()
        Size columns whose values <= 0 are meant (exempt from the size check, not from ``positive``).

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[str, ...] = Field(min_length=1)
    targets: tuple[str, ...] = ()
    group: str | None = None
    positive: tuple[str, ...] = ()
    min_rows: int = Field(default=1, ge=1)
    max_params: int | None = Field(default=None, ge=1)
    training: bool = False
    allow_nonpositive: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_are_distinct(self) -> ColumnSpec:
        names = [*self.features, *self.targets, *([self.group] if self.group is not None else [])]
        if any(not name.strip() for name in names):
            raise ValueError("column names must not be empty")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"column {repeated[0]!r} is given twice; a column has one role")
        unknown = [name for name in self.positive if name not in (*self.features, *self.targets)]
        if unknown:
            raise ValueError(f"positive column {unknown[0]!r} is neither a feature nor a target")
        allowed = [name for name in self.allow_nonpositive if name not in self.features]
        if allowed:
            raise ValueError(
                f"--allow-nonpositive names {allowed[0]!r}, not a feature ({', '.join(self.features)}); "
                "name a feature column"
            )
        return self

    def rows_needed(self) -> int:
        """Return the fewest rows a group must have: ``min_rows``, and the budget plus ``SPARE_ROWS`` if set."""
        budget = 0 if self.max_params is None else self.max_params + SPARE_ROWS
        return max(self.min_rows, budget)

    def roles(self) -> list[tuple[str, Role]]:
        """Return ``(column, role)`` for the group, the features and the targets, in that order."""
        group: list[tuple[str, Role]] = [(self.group, "group")] if self.group is not None else []
        return [
            *group,
            *((name, "feature") for name in self.features),
            *((name, "target") for name in self.targets),
        ]


def validate_frame(
    frame: pd.DataFrame,
    *,
    source: str | Path,
    features: Sequence[str],
    targets: Sequence[str],
    group: str | None = None,
    positive: Sequence[str] = (),
    min_rows: int = 1,
    max_params: int | None = None,
    training: bool = False,
    allow_nonpositive: Sequence[str] = (),
) -> pd.DataFrame:
    """Check a table of experiments and return the columns a law needs.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table, one row per experiment, as read from ``source``.
    source : str or Path
        Where the table came from (a file name); every message starts with it.
    features : sequence of str
        Input columns; each must be numeric and finite.
    targets : sequence of str
        Predicted columns; each must be numeric and finite. Empty for a table of inputs to predict on.
    group : str, optional
        Column with one set of constants per value; must have no missing values.
    positive : sequence of str, default ()
        Features or targets whose values must be > 0.
    min_rows : int, default 1
        Fewest rows allowed, per group when ``group`` is given (the number of constants to fit).
    max_params : int, optional
        Constant budget of the search to come: each group then needs ``max_params + 2`` rows.
    training : bool, default False
        These are the rows a search fits: also check that every size column is positive (a feature named as a
        size, e.g. ``N``, ``params``, ``num_tokens``, or one that is mostly positive over more than a factor of 3,
        which the laws would take a log or power of), that no feature is constant, and warn (``DataWarning``)
        about values more than 6 orders of magnitude from their column's median.
    allow_nonpositive : sequence of str, default ()
        Features exempt from the size check (values <= 0 are meant); only with ``training``.

    Returns
    -------
    pandas.DataFrame
        Shape (n_rows, n_kept): only the group, feature and target columns, in the frame's own column order,
        the group as str, feature and target columns numeric, the index reset to 0..n_rows-1.

    Raises
    ------
    SchemaError
        One line naming the file, the column, the first bad row (and its group) and the fix.

    Warns
    -----
    DataWarning
        With ``training``: one per column holding a value more than 6 orders of magnitude from its median.

    Examples
    --------
    >>> frame = pd.DataFrame({"N": [1e6, 1e7], "loss": [3.1, 2.8], "note": ["a", "b"]})
    >>> list(validate_frame(frame, source="runs.csv", features=["N"], targets=["loss"]).columns)
    ['N', 'loss']

    """
    where = str(source)
    try:
        spec = ColumnSpec(
            features=tuple(features),
            targets=tuple(targets),
            group=group,
            positive=tuple(positive),
            min_rows=min_rows,
            max_params=max_params,
            training=training,
            allow_nonpositive=tuple(allow_nonpositive),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "columns"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise SchemaError(
            f"{where}: invalid column choice ({field}): {reason}. Check --features, --target and --group."
        ) from exc
    frame = frame.set_axis([str(column) for column in frame.columns], axis=1)
    _check_columns(frame, spec, where)
    kept = [column for column in frame.columns if column in {name for name, _ in spec.roles()}]
    out = frame.loc[:, kept].reset_index(drop=True)
    groups = _check_groups(out, spec, where)
    for name, role in spec.roles():
        if role != "group":
            out[name] = _numeric(out[name], name, groups, where)
    _check_finite(out, spec, groups, where)
    _check_positive(out, spec, groups, where)
    _check_rows(out, spec, groups, where)
    if spec.training:
        _check_sizes(out, spec, groups, where)
        _check_constant(out, spec, where)
        _warn_outliers(out, spec, groups, where)
    if spec.group is not None:
        out[spec.group] = groups
    return out


def _check_columns(frame: pd.DataFrame, spec: ColumnSpec, where: str) -> None:
    columns = list(frame.columns)
    for name, role in spec.roles():
        if columns.count(name) > 1:
            times = columns.count(name)
            raise SchemaError(f"{where}: column {name!r} appears {times} times. Rename the copies.")
        if name in columns:
            continue
        listed = ", ".join(columns[:_MAX_LISTED_COLUMNS])
        if len(columns) > _MAX_LISTED_COLUMNS:
            listed += f", ... ({len(columns)} in all)"
        guess = closest_name(name, columns)
        flag = _FLAG_HINT[role]
        if guess is None:
            fix = f"Give {flag} one of the columns above."
        elif role == "feature":
            fix = f"Did you mean {guess!r}? Fix the name in {flag} ({guess})."
        else:
            fix = f"Did you mean {guess!r}? Fix the name with {flag} {guess}."
        raise SchemaError(f"{where}: column {name!r} not found (columns: {listed or 'none'}). {fix}")


def _check_groups(frame: pd.DataFrame, spec: ColumnSpec, where: str) -> pd.Series | None:
    if spec.group is None:
        return None
    column = frame[spec.group]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise SchemaError(
            f"{where}: column {spec.group!r} has no value in row {row + 1}. "
            f"Give every row a group, or drop the row."
        )
    return column.astype(str)


def _at(row: int, groups: pd.Series | None) -> str:
    """Return 'row 3' or "row 3 (group 'a')" for a 0-based row position."""
    if groups is None:
        return f"row {row + 1}"
    return f"row {row + 1} (group {groups.iloc[row]!r})"


def _show(value: object) -> str:
    """Return a cell as a user wrote it: numbers plain (-5.0, not np.float64(-5.0)), text quoted."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _numeric(column: pd.Series, name: str, groups: pd.Series | None, where: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    if pd.api.types.is_bool_dtype(column):
        raise SchemaError(
            f"{where}: column {name!r} is true/false, not numeric. Encode it as numbers (0 and 1) "
            f"or leave it out of the features and targets."
        )
    # Text that reads as numbers (an object column) is accepted; the first value that does not is reported.
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"{where}: column {name!r} is not numeric: {_at(row, groups)} has {_show(column.iloc[row])}. "
            f"Write plain numbers (e.g. 1.5e9) in that column, or leave it out of the features and targets."
        )
    return converted


def _first_bad(frame: pd.DataFrame, names: Sequence[str], bad: np.ndarray) -> tuple[int, str, int]:
    """Return (row, column, number of bad rows) of the first True in ``bad`` (shape (n_rows, len(names)))."""
    rows = np.flatnonzero(bad.any(axis=1))
    row = int(rows[0])
    column = names[int(np.flatnonzero(bad[row])[0])]
    return row, column, len(rows)


def _check_finite(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    names = [*spec.features, *spec.targets]
    values = frame.loc[:, names].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    row, column, count = _first_bad(frame, names, bad)
    value = frame[column].iloc[row]
    what = "a missing value (NaN)" if pd.isna(value) else f"an infinite value ({_show(value)})"
    more = f" ({count} such rows in all)" if count > 1 else ""
    raise SchemaError(
        f"{where}: column {column!r} has {what} in {_at(row, groups)}{more}. "
        f"Fill in a finite number or drop the row; every feature and target needs one."
    )


def _check_positive(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    if not spec.positive:
        return
    names = list(spec.positive)
    bad = frame.loc[:, names].to_numpy(dtype=float) <= 0
    if not bad.any():
        return
    row, column, count = _first_bad(frame, names, bad)
    more = f" ({count} such rows in all)" if count > 1 else ""
    raise SchemaError(
        f"{where}: column {column!r} must be positive (the law takes its log or a power of it), "
        f"but {_at(row, groups)} has {_show(frame[column].iloc[row])}{more}. "
        f"Drop the rows with values <= 0, or shift or rescale the column."
    )


def _fewer_constants(spec: ColumnSpec, have: int) -> str:
    """Return the fix for a table or group of ``have`` rows: the --max-params that fits, or fewer constants."""
    if spec.max_params is None:
        return "choose a law with fewer constants"
    fits = have - SPARE_ROWS
    if fits >= 1 and have >= spec.min_rows:
        return f"pass --max-params {fits} (at most {fits} constant{'s' if fits > 1 else ''} fit {have} rows)"
    return f"collect at least {max(spec.min_rows, 1 + SPARE_ROWS)} rows for any search"


def _check_rows(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    need = spec.rows_needed()
    if spec.max_params is not None and need == spec.max_params + SPARE_ROWS:
        why = (f"a budget of {spec.max_params} constants needs at least {need} "
               f"(the constants plus {SPARE_ROWS}, to leave rows to validate on)")
    else:
        why = f"fitting {need} constants needs at least {need}"
    if groups is None:
        if len(frame) < need:
            raise SchemaError(
                f"{where}: {len(frame)} rows, but {why}. Add rows, or {_fewer_constants(spec, len(frame))}."
            )
        return
    if len(frame) == 0:
        raise SchemaError(f"{where}: no rows. Add rows with a value in column {spec.group!r}.")
    counts = groups.value_counts(sort=False)
    # value_counts(sort=False) keeps the order of first appearance, so the first short group is reported.
    short = counts[counts < need]
    if short.empty:
        return
    name, have = str(short.index[0]), int(short.iloc[0])
    row = int(np.flatnonzero((groups == name).to_numpy())[0])
    per_group = why.replace("needs at least", "per group needs at least", 1)
    raise SchemaError(
        f"{where}: group {name!r} of column {spec.group!r} (first at row {row + 1}) has {have} rows, "
        f"but {per_group}. Add rows to that group, drop the group, or {_fewer_constants(spec, int(short.min()))}."
    )


def is_size_name(name: str) -> bool:
    """Return whether a column name calls the column a size (parameters, tokens, compute, a batch size...).

    Examples
    --------
    >>> [is_size_name(name) for name in ("N", "num_params", "data_size", "log_flops", "lr")]
    [True, True, True, False, False]

    """
    words = {word for word in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if word}
    if words & _LOG_WORDS:
        return False
    return name.lower() in _SIZE_NAMES or bool(words & _SIZE_WORDS)


def _looks_like_scale(column: NDArray[np.float64]) -> bool:
    """Return whether the data make a column a scale apart from a few non-positive values."""
    positives = column[column > 0]
    if positives.size < _MOSTLY_POSITIVE * column.size or positives.size == 0:
        return False
    return bool(positives.max() > _SCALE_RATIO * positives.min())


def _check_sizes(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    for name in spec.features:
        if name in spec.allow_nonpositive:
            continue
        column = frame[name].to_numpy(dtype=float)
        bad = column <= 0
        if not bad.any():
            continue
        by_name = is_size_name(name)
        if not (by_name or _looks_like_scale(column)):
            continue
        rows = np.flatnonzero(bad)
        row = int(rows[0])
        more = f" ({len(rows)} such rows in all)" if len(rows) > 1 else ""
        why = "is a size by its name" if by_name else "is a scale (positive over more than a factor of 3 elsewhere)"
        raise SchemaError(
            f"{where}: column {name!r} {why}, and the laws take its log or a power of it, but "
            f"{_at(row, groups)} has {_show(frame[name].iloc[row])}{more}. Fix or drop the rows with values <= 0, "
            f"or pass --allow-nonpositive {name} if they are meant."
        )


def _check_constant(frame: pd.DataFrame, spec: ColumnSpec, where: str) -> None:
    for name in spec.features:
        values = frame[name]
        if len(values) > 1 and values.nunique() == 1:
            raise SchemaError(
                f"{where}: feature {name!r} has the same value {_show(values.iloc[0])} in all {len(values)} rows, "
                f"so no law can learn how it matters. Drop it from --features, or add rows where it varies."
            )


def _warn_outliers(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    for name in [*spec.features, *spec.targets]:
        magnitude = np.abs(frame[name].to_numpy(dtype=float))
        nonzero = magnitude > 0
        if not nonzero.any():
            continue
        median = float(np.median(magnitude[nonzero]))
        decades = np.full(magnitude.shape, 0.0)
        decades[nonzero] = np.abs(np.log10(magnitude[nonzero] / median))
        far = np.flatnonzero(decades > OUTLIER_DECADES)
        if far.size == 0:
            continue
        row = int(far[0])
        more = f" ({far.size} such rows in all)" if far.size > 1 else ""
        warnings.warn(
            f"{where}: column {name!r} {_at(row, groups)} has {_show(frame[name].iloc[row])}, "
            f"{decades[row]:.0f} orders of magnitude from the column's median {median:.3g}{more}. "
            f"Check it for a typo or a unit mix-up; fix or drop the row if it is wrong.",
            DataWarning,
            stacklevel=3,
        )
