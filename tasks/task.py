"""What a discovery task is: features, targets, groups, constant budget, and how the test rows extrapolate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Trend = Literal["increasing", "decreasing"]


class Task(BaseModel):
    """A scaling-law discovery task.

    Parameters
    ----------
    name : str
        Identifier, e.g. ``"parallel_scaling_law"``.
    features : tuple of str
        Input columns in the order the law receives them (SLDBench's official order).
    targets : tuple of str
        Output columns; a law is fitted per target.
    group_column : str
        Column whose values split the rows into groups, each with its own constants.
    max_params : int
        Constant budget per group and per target.
    extrapolation_axis : tuple of str
        Features whose product orders the rows from small to large scale: the test rows lie beyond the training
        rows along it (empty: the test rows are other combinations inside the range, so validation folds are
        random rather than ordered).
    monotone : dict of str to {"increasing", "decreasing"}
        Expected trend of every target in a feature, where the literature agrees on one.
    extra_columns : tuple of str
        Columns the data carries beside group, features and targets (kept for reports, never fitted).
    description : str
        One paragraph for prompts and reports.
    citation : str
        Where the task's data and human-derived law come from.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    features: tuple[str, ...] = Field(min_length=1)
    targets: tuple[str, ...] = Field(min_length=1)
    group_column: str = "group"
    max_params: int = Field(ge=1)
    extrapolation_axis: tuple[str, ...] = ()
    monotone: dict[str, Trend] = Field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    is_sldbench: bool = False
