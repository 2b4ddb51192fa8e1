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
    "SchemaError",
    "TaskData",
    "UnknownTaskError",
    "UnsupportedFormatError",
    "check_task_name",
    "default_cache_dir",
    "hash_file",
    "hash_frame",
    "is_size_name",
    "load_sldbench",
    "load_table",
    "read_columns",
    "read_table",
    "validate_frame",
]
