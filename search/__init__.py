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
from sld.search.scoring import Scores, SplitArrays, SplitScore, clip_r2, score_predictions, score_split

__all__ = [
    "ConstantSpec",
    "ExpressionError",
    "FitConfig",
    "FitResult",
    "GroupedFit",
    "Law",
    "Scores",
    "SearchError",
    "SplitArrays",
    "SplitScore",
    "clip_r2",
    "fit_law",
    "fit_law_grouped",
    "parse_law",
    "score_predictions",
    "score_split",
]
