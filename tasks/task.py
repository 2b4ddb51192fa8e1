"""What a discovery task is: features, targets, groups, constant budget, and how the test rows extrapolate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    optima : tuple of str
        Features in which the target has an interior minimum (hyperparameters such as the learning rate, where the
        literature agrees that loss is U-shaped): a law monotone in one of them is rejected.
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
    optima: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    is_sldbench: bool = False

    @model_validator(mode="after")
    def _named_features_exist(self) -> Task:
        # A misspelt feature in the axis, a trend or an optimum would otherwise fail deep inside a search.
        named = {
            "extrapolation_axis": self.extrapolation_axis,
            "monotone": tuple(self.monotone),
            "optima": self.optima,
        }
        for field_name, names in named.items():
            unknown = [name for name in names if name not in self.features]
            if unknown:
                raise ValueError(
                    f"{field_name} names {', '.join(unknown)}, not among the features ({', '.join(self.features)}); "
                    "use feature names."
                )
        return self
