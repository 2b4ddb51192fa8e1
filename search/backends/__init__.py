"""Symbolic-regression backends: structure search that proposes law forms with free constants.

``get_backend("operon")`` (pyoperon, installed with sld) or ``get_backend("pysr")`` (PySR: ``pip install sld[pysr]``,
which installs Julia on first use); ``"none"`` turns structure search off. Each backend's ``propose`` takes arrays and
variable names and returns expression strings over those names, with constants ``c0, c1, ...`` for the engine to
refit, e.g. ``sld discover --backend operon``.

Example
-------
>>> from sld.search.backends import get_backend
>>> get_backend("none") is None
True
>>> get_backend("operon").name
'operon'
"""

from __future__ import annotations

import difflib
from typing import Literal

from sld.search.backends.base import BackendUnavailable, ProposedLaw, StructureBackend
from sld.search.errors import SearchError

BACKENDS = ("operon", "pysr", "none")
"""Names accepted by `get_backend` (and by ``--backend``)."""

__all__ = ["BACKENDS", "BackendUnavailable", "ProposedLaw", "StructureBackend", "get_backend"]


def get_backend(name: Literal["operon", "pysr", "none"]) -> StructureBackend | None:
    """Return the named backend with its default settings, or None for ``"none"``.

    Parameters
    ----------
    name : {"operon", "pysr", "none"}

    Returns
    -------
    StructureBackend or None

    Raises
    ------
    BackendUnavailable
        For ``"pysr"`` when ``import pysr`` fails (the message says how to install PySR and Julia).
    SearchError
        For an unknown name (the message lists the choices).
    """
    if name == "none":
        return None
    if name == "operon":
        from sld.search.backends.operon import OperonBackend

        return OperonBackend()
    if name == "pysr":
        from sld.search.backends.pysr import PySRBackend

        return PySRBackend()
    close = difflib.get_close_matches(str(name), BACKENDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SearchError(f"Unknown backend {name!r}. Known: {', '.join(BACKENDS)}.{hint}")
