"""Check experiment tables at the boundary, before any law sees them.

A pydantic model checks the column spec (which columns are features, targets, the group); vectorized pandas
checks then look at the rows. Every problem becomes a one-line ``SchemaError`` that names the file, the column
and the first bad row (1-based data row, and its group) and says how to fix it, for example (one line)::

    train.csv: column 'lossx' not found (columns: N, D, loss). Did you mean 'loss'?
    Fix the name with --target loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SchemaError, closest_name

Role = Literal["feature", "target", "group"]

# How the CLI spells each role's flag, so that a message can say exactly what to change.
_FLAG_HINT: dict[Role, str] = {"feature": "--features", "target": "--target", "group": "--group"}
_MAX_LISTED_COLUMNS = 20


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

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[str, ...] = Field(min_length=1)
    targets: tuple[str, ...] = ()
    group: str | None = None
    positive: tuple[str, ...] = ()
    min_rows: int = Field(default=1, ge=1)

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
        return self

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

    Returns
    -------
    pandas.DataFrame
        Shape (n_rows, n_kept): only the group, feature and target columns, in the frame's own column order,
        the group as str, feature and target columns numeric, the index reset to 0..n_rows-1.

    Raises
    ------
    SchemaError
        One line naming the file, the column, the first bad row (and its group) and the fix.

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


def _check_rows(frame: pd.DataFrame, spec: ColumnSpec, groups: pd.Series | None, where: str) -> None:
    need = spec.min_rows
    if groups is None:
        if len(frame) < need:
            raise SchemaError(
                f"{where}: {len(frame)} rows, but fitting {need} constants needs at least {need}. "
                f"Add rows, or choose a law with fewer constants."
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
    raise SchemaError(
        f"{where}: group {name!r} of column {spec.group!r} (first at row {row + 1}) has {have} rows, "
        f"but fitting {need} constants per group needs at least {need}. "
        f"Add rows to that group, drop the group, or choose a law with fewer constants."
    )
