"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ISOLATED_PREFIXES = ("SLD_", "HF_", "OPENAI_")
REPO = Path(__file__).resolve().parents[1]
# Read before any test isolates the environment: CI points SLD_CORPUS at the shared mirror.
_CORPUS_CANDIDATES = tuple(
    Path(path)
    for path in (os.environ.get("SLD_CORPUS"), REPO / "shared" / "sldbench", REPO.parent / "shared" / "sldbench")
    if path
)


@pytest.fixture
def shared_sldbench() -> Path:
    """The shared SLDBench mirror (read only); tests that need it skip where it is absent."""
    for candidate in _CORPUS_CANDIDATES:
        if (candidate / "parallel_scaling_law" / "train.parquet").is_file():
            return candidate.resolve()
    pytest.skip("shared/sldbench is not beside the repository and SLD_CORPUS is not set")


_RNSL_CANDIDATES = tuple(
    Path(path)
    for path in (os.environ.get("SLD_RNSL"), REPO / "shared" / "rnsl", REPO.parent / "shared" / "rnsl")
    if path
)


@pytest.fixture
def shared_rnsl() -> Path:
    """The shared rnsl benchmark folder (read only); tests that need it skip where it is absent."""
    for candidate in _RNSL_CANDIDATES:
        if (candidate / "benchmark.lang.csv").is_file():
            return candidate.resolve()
    pytest.skip("shared/rnsl is not beside the repository and SLD_RNSL is not set")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Remove SLD_*, HF_* and OPENAI_* variables and run each test in its own empty working directory."""
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
