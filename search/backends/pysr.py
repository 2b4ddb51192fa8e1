"""Symbolic regression with PySR (Cranmer 2023), an optional backend that needs Julia.

Same recipe as the Operon backend: ``log`` of wide positive inputs, a run on ``y`` and one on ``log y``, and the
numbers of every equation on PySR's Pareto front (``model.equations_``) turned into free constants. PySR >= 1
installs Julia itself through juliacall when it can, so the check does not look for ``julia`` on ``PATH``: it
imports ``pysr`` in a subprocess with a timeout (the first import may download Julia; a failed or stuck import
must not take the run down with it), once per process. Install with ``pip install sld[pysr]``, then
``sld discover --backend pysr ...``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sympy
from pydantic import BaseModel, ConfigDict, Field

from sld.search.backends.base import (
    Array,
    BackendUnavailable,
    InputTransform,
    ProposedLaw,
    StructureBackend,
    check_data,
    make_proposal,
    select_diverse,
)
from sld.search.errors import SearchError

PYSR_INSTALL_HINT = (
    "PySR needs Julia; `pip install sld[pysr]` (PySR then installs Julia on first use; or install it yourself, "
    "https://julialang.org/install, e.g. juliaup), or use --backend operon"
)


# The first `import pysr` may download and precompile Julia (minutes on a slow link); a broken install fails in
# seconds. Past this, the backend is reported unavailable rather than holding up the run.
IMPORT_TIMEOUT_S = 300.0


def pysr_installed() -> bool:
    """Whether the ``pysr`` package is on the path (checked without importing it)."""
    return importlib.util.find_spec("pysr") is not None


@functools.cache
def _import_problem(executable: str, pythonpath: str | None, timeout_s: float) -> str | None:
    """Import ``pysr`` in a fresh interpreter; return why it failed, or None when it worked.

    Cached per interpreter, ``PYTHONPATH`` and timeout: the answer holds for the process, and each search round
    asks again.
    """
    try:
        done = subprocess.run(
            [executable, "-c", "import pysr"], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return (
            f"`import pysr` took more than {timeout_s:.0f} s, e.g. while installing Julia; "
            "run `python -c 'import pysr'` once to finish that"
        )
    except OSError as exc:
        return f"cannot start {executable} to try `import pysr`: {exc}"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return f"`import pysr` failed: {lines[-1] if lines else f'exit code {done.returncode}'}"


def check_available(*, timeout_s: float = IMPORT_TIMEOUT_S) -> None:
    """Raise `BackendUnavailable` with the install hint unless ``import pysr`` works.

    Parameters
    ----------
    timeout_s : float, default 300
        How long the import (in a subprocess) may take, Julia's first installation included.

    Raises
    ------
    BackendUnavailable
        One line: the hint alone when ``pysr`` is not installed, else the hint and why the import failed.
    """
    if not pysr_installed():
        raise BackendUnavailable(PYSR_INSTALL_HINT)
    problem = _import_problem(sys.executable, os.environ.get("PYTHONPATH"), timeout_s)
    if problem is not None:
        raise BackendUnavailable(f"{PYSR_INSTALL_HINT} ({problem})")


class PySRConfig(BaseModel):
    """Settings of the PySR backend.

    Attributes
    ----------
    binary_operators, unary_operators : tuple of str
        PySR operators; each has a law equivalent.
    niterations : int
        Iterations of one run (one run per target transform).
    populations, population_size : int
        PySR's island model.
    maxsize : int or None
        Complexity limit; None derives it from ``max_params`` (``3 * max_params + 4``, within 7..30).
    log_target : bool
        Also search on ``log y`` when every ``y > 0``.
    log_span : float
        A positive variable spanning more than this factor is given as ``log``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    binary_operators: tuple[str, ...] = ("+", "-", "*", "/")
    unary_operators: tuple[str, ...] = ("exp", "log", "sqrt", "square")
    niterations: int = Field(default=40, ge=1)
    populations: int = Field(default=8, ge=1)
    population_size: int = Field(default=33, ge=10)
    maxsize: int | None = Field(default=None, ge=7)
    log_target: bool = True
    log_span: float = Field(default=3.0, gt=1.0)


class PySRBackend(StructureBackend):
    """Structure search with ``pysr.PySRRegressor`` (serial and deterministic for a seed).

    Parameters
    ----------
    config : PySRConfig, optional
        Operators and budget.

    Raises
    ------
    BackendUnavailable
        If ``import pysr`` fails (the package or Julia is missing) or does not finish within the timeout.
    """

    name = "pysr"

    def __init__(self, config: PySRConfig | None = None) -> None:
        check_available()
        self.config = config or PySRConfig()

    def propose_laws(
        self,
        X: Array,
        y: Array,
        variables: Sequence[str],
        *,
        max_params: int,
        n_laws: int = 20,
        seed: int = 0,
        time_limit_s: float = 30.0,
    ) -> list[ProposedLaw]:
        """Search for law forms with PySR; arguments and result as in ``OperonBackend.propose_laws``.

        Raises
        ------
        BackendUnavailable
            If ``import pysr`` fails or does not finish within the timeout.
        SearchError
            If the data have the wrong shape, or PySR fails.
        """
        check_available()
        if max_params < 0 or n_laws < 1:
            raise SearchError(f"need max_params >= 0 and n_laws >= 1; got {max_params} and {n_laws}")
        X, y, names = check_data(X, y, variables)
        transform = InputTransform.choose(X, names, log_span=self.config.log_span)
        Z = transform.apply(X)
        runs: list[tuple[bool, Array]] = [(False, y)]
        if self.config.log_target and bool(np.all(y > 0)):
            runs.append((True, np.log(y)))
        deadline = time.monotonic() + time_limit_s
        proposals: list[ProposedLaw] = []
        for index, (log_y, target) in enumerate(runs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            share = remaining / (len(runs) - index)
            equations = self._run(Z, target, max_params=max_params, seed=seed, timeout_s=share)
            for expr in equations_to_sympy(equations, transform):
                proposal = make_proposal(sympy.exp(expr) if log_y else expr, X, y, names, max_params=max_params)
                if proposal is not None:
                    proposals.append(proposal)
        chosen: list[ProposedLaw] = select_diverse(proposals, n_laws)
        return chosen

    def _run(self, Z: Array, target: Array, *, max_params: int, seed: int, timeout_s: float) -> list[Any]:
        """One PySR run; the ``sympy_format`` of each equation on its Pareto front."""
        import pysr

        config = self.config
        model = pysr.PySRRegressor(
            binary_operators=list(config.binary_operators),
            unary_operators=list(config.unary_operators),
            niterations=config.niterations,
            populations=config.populations,
            population_size=config.population_size,
            maxsize=config.maxsize or min(30, max(7, 3 * max_params + 4)),
            timeout_in_seconds=max(1.0, timeout_s),
            random_state=seed,
            progress=False,
            verbosity=0,
            temp_equation_file=True,
            **_determinism_options(str(getattr(pysr, "__version__", "1"))),
        )
        try:
            model.fit(Z, target, variable_names=[f"x{j}" for j in range(Z.shape[1])])
            return list(model.equations_["sympy_format"])
        except Exception as exc:  # PySR and Julia raise many kinds; all mean this run failed.
            raise SearchError(f"PySR failed: {exc}") from exc


def _determinism_options(version: str) -> dict[str, Any]:
    """PySR's switches for a reproducible serial search (renamed in PySR 1.0)."""
    major = version.split(".")[0]
    if not major.isdigit() or int(major) >= 1:
        return {"deterministic": True, "parallelism": "serial"}
    return {"deterministic": True, "procs": 0, "multithreading": False}


def equations_to_sympy(equations: Iterable[Any], transform: InputTransform) -> list[sympy.Expr]:
    """Map PySR's sympy equations over inputs ``x0, x1, ...`` to expressions over the original variables.

    Parameters
    ----------
    equations : iterable of sympy.Expr
        ``model.equations_["sympy_format"]``; entries that are not sympy expressions are skipped.
    transform : InputTransform
        What each input column stands for (``x0 -> log(N)``).

    Returns
    -------
    list of sympy.Expr
        Still with PySR's numbers; `sld.search.backends.base.make_proposal` turns them into constants.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> t = InputTransform.choose(np.array([[1e6], [1e9]]), ["N"])
    >>> x0 = sympy.Symbol("x0")
    >>> equations_to_sympy([2.5 + 1.5 * sympy.exp(-0.3 * x0)], t)
    [1.5/N**0.3 + 2.5]
    """
    columns = transform.symbols()
    mapping = {f"x{j}": symbol for j, symbol in enumerate(columns)}
    result: list[sympy.Expr] = []
    for equation in equations:
        if not isinstance(equation, sympy.Expr):
            continue
        unknown = [s for s in equation.free_symbols if str(s) not in mapping]
        if unknown:
            continue
        result.append(equation.xreplace({s: mapping[str(s)] for s in equation.free_symbols}))
    return result
