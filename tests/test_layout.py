"""The import-linter contracts name every module of the CLI glue package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = {"agent", "search", "tasks", "corpus"}


def test_the_glue_contract_lists_every_module_of_sld() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (glue,) = [c for c in contracts if c["name"].startswith("agent, search, tasks and corpus import nothing")]
    modules = {path.stem for path in (ROOT / "sld").iterdir()
               if path.name != "__init__.py" and (path.suffix == ".py" or (path / "__init__.py").exists())}
    assert {f"sld.{name}" for name in modules - LIBRARY} == set(glue["forbidden_modules"])
    assert set(glue["source_modules"]) == {f"sld.{name}" for name in LIBRARY}
