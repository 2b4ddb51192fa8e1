"""Stable sha256 digests of data files and data frames, recorded with every run for provenance.

``hash_frame`` digests the content of a frame (column names and order, values), not pandas' in-memory layout,
so the same table gives the same digest across processes, machines and pandas versions; the index is ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

_FRAME_FORMAT = b"sld-frame-v1\0"
_CHUNK_BYTES = 1 << 20


def hash_file(path: str | Path) -> str:
    """Return the sha256 of a file's bytes.

    Parameters
    ----------
    path : str or Path
        Any file.

    Returns
    -------
    str
        64 lowercase hex digits.

    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def hash_frame(frame: pd.DataFrame) -> str:
    """Return a sha256 of a frame's column names, column order and values.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any frame, shape (n_rows, n_columns). The index is not part of the digest.

    Returns
    -------
    str
        64 lowercase hex digits; equal for frames with equal columns and values. Integers and floats are
        told apart (1 and 1.0 differ), NaN and missing values are one value, -0.0 equals 0.0.

    Examples
    --------
    >>> a = pd.DataFrame({"N": [1.0, 2.0], "loss": [3.0, 2.5]})
    >>> hash_frame(a) == hash_frame(a.copy().set_axis([10, 11]))
    True
    >>> hash_frame(a) == hash_frame(a[["loss", "N"]])
    False

    """
    digest = hashlib.sha256(_FRAME_FORMAT)
    digest.update(f"{frame.shape[0]}\0{frame.shape[1]}\0".encode())
    for position in range(frame.shape[1]):
        name = str(frame.columns[position]).encode()
        kind, payload = _encode(frame.iloc[:, position])
        # Length prefixes keep the stream unambiguous: no two different frames share a byte sequence.
        for part in (name, kind, payload):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


def _encode(column: pd.Series) -> tuple[bytes, bytes]:
    """Return a type tag and a canonical byte string of the column's values."""
    has_missing = bool(column.isna().any())
    if pd.api.types.is_bool_dtype(column) and not has_missing:
        return b"b", column.to_numpy(dtype=np.uint8).tobytes()
    if pd.api.types.is_unsigned_integer_dtype(column) and not has_missing:
        return b"u", column.to_numpy(dtype="<u8").tobytes()
    if pd.api.types.is_integer_dtype(column) and not has_missing:
        return b"i", column.to_numpy(dtype="<i8").tobytes()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype="<f8", na_value=np.nan).copy()
        values[np.isnan(values)] = np.nan  # one bit pattern for every NaN
        values[values == 0.0] = 0.0  # -0.0 and 0.0 are one value
        return b"f", values.tobytes()
    parts = []
    for value in column.tolist():
        text = b"\x00" if pd.isna(value) else b"\x01" + str(value).encode()
        parts.append(len(text).to_bytes(8, "little") + text)
    return b"s", b"".join(parts)
