"""Symbolic laws, their constant fitting and the official scoring: arrays, names and bounds in; results out.

Examples
--------
>>> from sld.search import parse_law
>>> parse_law("E + A/N^alpha", ["N"]).n_params
3
"""

from sld.search.errors import ExpressionError, SearchError
from sld.search.expressions import ConstantSpec, Law, parse_law
from sld.search.fitting import FitConfig, FitResult, GroupedFit, fit_law, fit_law_grouped
from sld.search.scoring import Evaluation, Scores, SplitArrays, clip_r2, evaluate_split, score_predictions

__all__ = [
    "ConstantSpec",
    "Evaluation",
    "ExpressionError",
    "FitConfig",
    "FitResult",
    "GroupedFit",
    "Law",
    "Scores",
    "SearchError",
    "SplitArrays",
    "clip_r2",
    "evaluate_split",
    "fit_law",
    "fit_law_grouped",
    "parse_law",
    "score_predictions",
]
