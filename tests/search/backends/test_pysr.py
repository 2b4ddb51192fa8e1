import importlib
import sys
import time
import types

import numpy as np
import pandas as pd
import pytest
import sympy

from sld.search import SearchError, parse_law
from sld.search.backends import BackendUnavailable, get_backend
from sld.search.backends import pysr as pysr_backend
from sld.search.backends.base import InputTransform, make_proposal

HINT = (
    "PySR needs Julia; `pip install sld[pysr]` (PySR then installs Julia on first use; or install it yourself, "
    "https://julialang.org/install, e.g. juliaup), or use --backend operon"
)


@pytest.fixture
def installed_pysr(monkeypatch, tmp_path):
    """Return ``install(source)``: put a package ``pysr`` whose ``__init__`` is ``source`` on every path."""

    def install(source: str) -> None:
        package = tmp_path / "site" / "pysr"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))  # for the subprocess that tries the import
        importlib.invalidate_caches()

    pysr_backend._import_problem.cache_clear()
    yield install
    pysr_backend._import_problem.cache_clear()


@pytest.fixture
def fake_pysr(monkeypatch):
    """Pretend Julia and pysr are installed; PySRRegressor returns fixed equations over x0."""
    x0 = sympy.Symbol("x0")
    calls = []

    class PySRRegressor:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            calls.append(self)

        def fit(self, X, y, variable_names):
            self.variable_names = variable_names
            raw = len(calls) == 1  # the first run is on y, the second on log y
            equations = (
                [
                    sympy.Float(2.5) + sympy.Float(1.5) * sympy.exp(sympy.Float(-0.5) * x0),
                    sympy.Float(2.6) + sympy.Float(0.01) * x0,
                ]
                if raw
                else [sympy.Float(0.92) + sympy.Float(1e-3) * sympy.exp(sympy.Float(-0.5) * x0)]
            )
            self.equations_ = pd.DataFrame({"sympy_format": equations, "complexity": range(len(equations))})
            return self

    module = types.ModuleType("pysr")
    module.PySRRegressor = PySRRegressor
    module.__version__ = "1.5.0"
    monkeypatch.setitem(sys.modules, "pysr", module)
    monkeypatch.setattr(pysr_backend, "check_available", lambda: None)
    return calls


def test_missing_pysr_package_gives_the_one_line_hint(monkeypatch):
    monkeypatch.setattr(pysr_backend, "pysr_installed", lambda: False)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("pysr")
    assert str(info.value) == HINT


def test_here_without_pysr_the_check_fails_with_the_hint():
    if pysr_backend.pysr_installed():
        pytest.skip("pysr is installed here")
    with pytest.raises(BackendUnavailable) as info:
        pysr_backend.check_available()
    assert str(info.value) == HINT


def test_failed_import_gives_the_hint_and_the_reason(installed_pysr):
    installed_pysr("raise ImportError('juliacall could not install Julia: no network')\n")
    with pytest.raises(BackendUnavailable) as info:
        get_backend("pysr")
    message = str(info.value)
    assert "\n" not in message and message.startswith(HINT)
    assert message.endswith("(`import pysr` failed: ImportError: juliacall could not install Julia: no network)")


def test_import_that_hangs_is_cut_off_by_the_timeout(installed_pysr):
    installed_pysr("import time\ntime.sleep(30)\n")
    start = time.perf_counter()
    with pytest.raises(BackendUnavailable, match=r"`import pysr` took more than 1 s"):
        pysr_backend.check_available(timeout_s=1.0)
    assert time.perf_counter() - start < 10


def test_import_that_works_needs_no_julia_on_path(installed_pysr, monkeypatch):
    installed_pysr("")
    monkeypatch.setenv("PATH", "/nonexistent")  # no julia to be found: PySR would install its own
    pysr_backend.check_available()
    pysr_backend.check_available()  # the second check reuses the first answer
    assert pysr_backend._import_problem.cache_info().hits == 1


def test_equations_become_laws_with_constants():
    transform = InputTransform.choose(np.geomspace(1e6, 1e9, 5)[:, None], ["N"])
    x0 = sympy.Symbol("x0")
    [expr] = pysr_backend.equations_to_sympy([sympy.Float(2.5) + sympy.Float(1.5) * sympy.exp(-0.3 * x0)], transform)
    N = np.geomspace(1e6, 1e9, 20)
    proposal = make_proposal(expr, N[:, None], 2.5 + 1.5 * N**-0.3, ("N",), max_params=3)
    assert proposal is not None
    law = parse_law(proposal.expression, ["N"])
    assert law.n_params == 3
    assert sorted(proposal.init.values()) == pytest.approx([-0.3, 1.5, 2.5])
    assert proposal.r2 == pytest.approx(1.0)


def test_equations_over_unknown_inputs_are_skipped():
    transform = InputTransform.choose(np.array([[1.0], [2.0]]), ["N"])
    assert pysr_backend.equations_to_sympy([sympy.Symbol("x5") + 1, "not sympy"], transform) == []


def test_propose_with_a_fake_pysr_maps_back_and_passes_seed_and_serial_switches(fake_pysr):
    N = np.geomspace(1e6, 1e9, 50)
    y = 2.5 + 1.5 * N**-0.5
    laws = get_backend("pysr").propose_laws(N[:, None], y, ["N"], max_params=3, seed=7)
    by_text = {law.expression: law for law in laws}
    assert by_text["N**c0*c1 + c2"].init == {"c0": -0.5, "c1": 1.5, "c2": 2.5}
    assert len(laws) == 3  # the exp of the log-target equation included
    assert all(parse_law(law.expression, ["N"]).n_params <= 3 for law in laws)
    first = fake_pysr[0]
    assert first.kwargs["random_state"] == 7
    assert first.kwargs["deterministic"] is True and first.kwargs["parallelism"] == "serial"
    assert first.kwargs["maxsize"] >= 7
    assert first.variable_names == ["x0"]
    assert len(fake_pysr) == 2  # one run on y, one on log y


def test_pysr_failures_become_search_errors(fake_pysr, monkeypatch):
    def broken_fit(self, X, y, variable_names):
        raise RuntimeError("Julia exploded")

    monkeypatch.setattr(sys.modules["pysr"].PySRRegressor, "fit", broken_fit)
    N = np.geomspace(1e6, 1e9, 10)
    with pytest.raises(SearchError, match="PySR failed: Julia exploded"):
        get_backend("pysr").propose(N[:, None], 2 + N**-0.5, ["N"], max_params=3)


def test_determinism_switches_follow_the_pysr_version():
    assert pysr_backend._determinism_options("1.5.0") == {"deterministic": True, "parallelism": "serial"}
    assert pysr_backend._determinism_options("0.19.4") == {"deterministic": True, "procs": 0, "multithreading": False}
