"""Read a user's own table of experiments (CSV or parquet) and validate it.

From the command line, for example::

    sld fit runs.csv --features N,D --target loss --group model_family
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .errors import CorpusNotFound, SchemaError, UnsupportedFormatError
from .validation import validate_frame

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or parquet file as it is, choosing the reader by the file's suffix.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet`` or ``.pq`` file (suffix case does not matter).

    Returns
    -------
    pandas.DataFrame
        Every column of the file, in the file's order.

    Raises
    ------
    CorpusNotFound
        The file does not exist.
    UnsupportedFormatError
        The suffix is neither CSV nor parquet.
    SchemaError
        The file cannot be parsed in the format its suffix names.

    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        known = ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES))
        raise UnsupportedFormatError(
            f"{path}: cannot read files ending in {path.suffix or '(no suffix)'!r}; known: {known}. "
            f"Save the table as CSV or parquet."
        )
    if not path.is_file():
        raise CorpusNotFound(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    try:
        if suffix in CSV_SUFFIXES:
            return pd.read_csv(path)
        return pd.read_parquet(path)
    # pandas and pyarrow raise many exception types for a damaged file; all mean the same here.
    except Exception as exc:
        kind = "CSV" if suffix in CSV_SUFFIXES else "parquet"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaError(
            f"{path}: cannot be read as {kind} ({reason}). Check that it is a {kind} file."
        ) from exc


def read_columns(path: str | Path) -> list[str]:
    """Return the column names of a CSV or parquet file, in the file's order.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet`` or ``.pq`` file.

    Returns
    -------
    list of str
        The names, as ``read_table`` would give them.

    Raises
    ------
    CorpusNotFound, UnsupportedFormatError, SchemaError
        As ``read_table``.

    """
    return [str(column) for column in read_table(path).columns]


def load_table(
    path: str | Path,
    *,
    features: Sequence[str],
    targets: Sequence[str],
    group: str | None = None,
    positive: Sequence[str] = (),
    min_rows: int = 1,
    max_params: int | None = None,
    training: bool = False,
    allow_nonpositive: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV or parquet table of experiments and return its validated law columns.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet`` or ``.pq`` file, one row per experiment.
    features : sequence of str
        Input columns of the law.
    targets : sequence of str
        Predicted columns; empty for a table of inputs to predict on.
    group : str, optional
        Column with one set of constants per value.
    positive : sequence of str, default ()
        Features or targets that must be > 0.
    min_rows : int, default 1
        Fewest rows allowed (per group when ``group`` is given).
    max_params, training, allow_nonpositive
        The up-front checks of rows a search will fit, as in ``validate_frame``.

    Returns
    -------
    pandas.DataFrame
        Shape (n_rows, n_kept), as returned by ``validate_frame``.

    Raises
    ------
    CorpusNotFound, UnsupportedFormatError, SchemaError
        One-line messages naming the file and the fix.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "runs.csv"
    >>> pd.DataFrame({"N": [1e6, 1e7], "loss": [3.1, 2.8]}).to_csv(path, index=False)
    >>> load_table(path, features=["N"], targets=["loss"]).shape
    (2, 2)

    """
    frame = read_table(path)
    return validate_frame(
        frame,
        source=path,
        features=features,
        targets=targets,
        group=group,
        positive=positive,
        min_rows=min_rows,
        max_params=max_params,
        training=training,
        allow_nonpositive=allow_nonpositive,
    )
