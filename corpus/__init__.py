"""Experiments: SLDBench loaders (local corpus, cache, Hugging Face hub), user tables, and their validation.

>>> from sld.corpus import load_table, load_sldbench, validate_frame
"""

from .errors import (
    CorpusError,
    CorpusNotFound,
    HubError,
    SchemaError,
    UnknownTaskError,
    UnsupportedFormatError,
)
from .hashing import hash_file, hash_frame
from .hub import HubClient
from .rnsl import RnslCurve, check_curve_names, curve_name, default_rnsl_dir, load_rnsl
from .sldbench import SLDBENCH_TASKS, TaskData, check_task_name, default_cache_dir, load_sldbench
from .tables import load_table, read_columns, read_table
from .validation import ColumnSpec, DataWarning, is_size_name, validate_frame

__all__ = [
    "SLDBENCH_TASKS",
    "ColumnSpec",
    "CorpusError",
    "CorpusNotFound",
    "DataWarning",
    "HubClient",
    "HubError",
    "RnslCurve",
    "SchemaError",
    "TaskData",
    "UnknownTaskError",
    "UnsupportedFormatError",
    "check_curve_names",
    "check_task_name",
    "curve_name",
    "default_cache_dir",
    "default_rnsl_dir",
    "hash_file",
    "hash_frame",
    "is_size_name",
    "load_rnsl",
    "load_sldbench",
    "load_table",
    "read_columns",
    "read_table",
    "validate_frame",
]
