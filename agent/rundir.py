"""The run directory: one typed record per file, one writer and one reader for every user.

``sld discover --run-dir D`` (and ``sld bench --run-dir``) keep here::

    config.json         RunConfig: task, engine and stop settings, data digests, provenance
    candidates.jsonl    one CandidateLine per evaluated candidate, appended and flushed at once
    llm_calls.jsonl     one line per LLM request (tokens), appended by the discovery graph
    checkpoints.sqlite  the LangGraph checkpoints (resume)
    result.json         RunResult: the summary, written atomically at the end

Resume, ``sld report``, ``sld validate`` and the benchmark read the files through :class:`RunDirectory` only. A
line of ``candidates.jsonl`` cut by a kill (or otherwise unreadable) is skipped, so a directory left by a kill at
any point is accepted by every reader.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> from sld.search.candidates import Candidate
>>> run = RunDirectory(Path(tempfile.mkdtemp()))
>>> run.append("loss", Candidate("E + A * N**(-alpha)", source="family", status="ok"))
>>> _ = run.candidates_path.open("a").write('{"target": "loss", "expre')  # a line cut by a kill
>>> [line.expression for line in run.read_candidates()]
['E + A * N**(-alpha)']
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sld.search import SplitArrays
from sld.search.candidates import Candidate, candidate_from_record

from .errors import AgentError

Record = dict[str, Any]
_PACKAGES = ("sld", "numpy", "scipy", "sympy", "pandas", "pyoperon", "langgraph", "openai")


class RunDirectoryError(AgentError):
    """A run directory is missing, unfinished or holds an unreadable file."""


class DataRecord(BaseModel):
    """The rows a run used: counts, SHA-256 digests (:func:`hash_rows`) and the files they came from."""

    model_config = ConfigDict(extra="forbid")

    train_rows: int
    train_sha256: str
    test_rows: int | None = None
    test_sha256: str | None = None
    paths: dict[str, str | None] | None = None


class Provenance(BaseModel):
    """When and with which software a run started."""

    model_config = ConfigDict(extra="forbid")

    started: str
    python: str
    platform: str
    versions: dict[str, str | None]

    @classmethod
    def now(cls) -> Provenance:
        """Return the provenance of a run starting now in this interpreter."""
        versions: dict[str, str | None] = {}
        for package in _PACKAGES:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        return cls(started=datetime.now(UTC).isoformat(), python=platform.python_version(),
                   platform=platform.platform(), versions=versions)


class RunConfig(BaseModel):
    """``config.json``: everything needed to repeat the run, and where its data came from."""

    model_config = ConfigDict(extra="forbid")

    task: dict[str, Any]
    engine: dict[str, Any]
    stop: dict[str, Any] = Field(default_factory=dict)
    agent: dict[str, Any] = Field(default_factory=dict)
    max_params: int | None = None
    data: DataRecord | None = None
    thread_id: str | None = None
    llm_model: str | None = None
    provenance: Provenance | None = None

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.engine.get("seed", 0))


class CandidateLine(BaseModel):
    """One line of ``candidates.jsonl``: the target and the candidate's record (:meth:`Candidate.as_record`)."""

    # The candidate's own fields belong to `Candidate`; they pass through unchanged.
    model_config = ConfigDict(extra="allow")

    target: str
    expression: str
    source: str
    status: str = "rejected"
    validation_r2: float | None = None

    def record(self) -> Record:
        """Return the candidate's record without the target (for :func:`candidate_from_record`)."""
        return self.model_dump(exclude={"target"})

    def candidate(self) -> Candidate:
        """Return the candidate."""
        return candidate_from_record(self.record())


class RunResult(BaseModel):
    """``result.json``: the run's summary (:meth:`sld.agent.discovery.Discovery.summary`)."""

    # The summary's blocks (law, llm, stopped...) are described by the summary itself.
    model_config = ConfigDict(extra="allow")

    task: str
    law: dict[str, Any]
    test_r2: float | None = None
    test_nmse: float | None = None
    test_nmae: float | None = None
    validation_r2: float | None = None
    candidates_evaluated: int = 0
    proposals: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    proposer: str = "offline"
    llm: dict[str, Any] = Field(default_factory=dict)
    stopped: dict[str, str] = Field(default_factory=dict)
    # Per target: why the law deserves care (nothing validated: a fallback), and the near-ties' spread beyond the
    # data (`sld.search.consensus.UncertaintyBand.as_dict`; the report's curve plots draw it).
    warnings: dict[str, str] = Field(default_factory=dict)
    uncertainty: dict[str, dict[str, Any]] = Field(default_factory=dict)


def hash_rows(rows: SplitArrays) -> str:
    """Return the SHA-256 digest of a split's features, targets and groups (the run's data provenance)."""
    digest = hashlib.sha256()
    for array in (rows.X, rows.Y):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update("\x1f".join(rows.groups.tolist()).encode())
    return digest.hexdigest()


def data_record(
    train: SplitArrays, test: SplitArrays | None, paths: Mapping[str, str | None] | None = None
) -> DataRecord:
    """Describe a run's rows for ``config.json``: row counts, digests (:func:`hash_rows`) and source files."""
    return DataRecord(
        train_rows=len(train.X), train_sha256=hash_rows(train),
        test_rows=None if test is None else len(test.X), test_sha256=None if test is None else hash_rows(test),
        paths=None if paths is None else dict(paths),
    )


class RunDirectory:
    """A discovery's files (see the module docstring); the only writer and reader of them."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise RunDirectoryError(f"Run directory {self.path} does not exist. Pass the folder given to --run-dir.")
        self.candidates_path = self.path / "candidates.jsonl"
        self.config_path = self.path / "config.json"
        self.result_path = self.path / "result.json"
        self.llm_calls_path = self.path / "llm_calls.jsonl"
        self.checkpoints_path = self.path / "checkpoints.sqlite"

    def write_config(self, config: RunConfig) -> None:
        """Write the resolved configuration, with provenance added when it has none."""
        if config.provenance is None:
            config = config.model_copy(update={"provenance": Provenance.now()})
        self.config_path.write_text(config.model_dump_json(indent=2))

    def read_config(self) -> RunConfig:
        """Read ``config.json``.

        Raises
        ------
        RunDirectoryError
            When it is missing or not a run configuration.
        """
        config = self._validated(self.config_path, RunConfig)
        assert isinstance(config, RunConfig)
        return config

    def append(self, target: str, candidate: Candidate) -> None:
        """Append one evaluated candidate (flushed at once, so a killed run loses nothing evaluated)."""
        line = CandidateLine.model_validate({"target": target, **candidate.as_record()})
        with self.candidates_path.open("a") as handle:
            handle.write(line.model_dump_json() + "\n")
            handle.flush()

    def read_candidates(self) -> list[CandidateLine]:
        """Return every readable line of ``candidates.jsonl`` in order (lines cut by a kill are skipped)."""
        if not self.candidates_path.is_file():
            return []
        lines = []
        for text in self.candidates_path.read_text().splitlines():
            if not text.strip():
                continue
            try:
                lines.append(CandidateLine.model_validate_json(text))
            except ValidationError:
                continue  # a line cut by a kill, or not a candidate
        return lines

    def candidates_by_target(self) -> dict[str, list[Record]]:
        """Return the logged candidate records per target (see :meth:`read_candidates`)."""
        records: dict[str, list[Record]] = {}
        for line in self.read_candidates():
            records.setdefault(line.target, []).append(line.record())
        return records

    def write_result(self, result: RunResult) -> None:
        """Write the final summary atomically (a kill leaves the old file or none, never half of one)."""
        tmp = self.path / "result.json.tmp"
        tmp.write_text(result.model_dump_json(indent=2))
        tmp.replace(self.result_path)

    def read_result(self) -> RunResult:
        """Read ``result.json``.

        Raises
        ------
        RunDirectoryError
            When it is missing (the run did not finish) or unreadable.
        """
        if not self.result_path.is_file():
            raise RunDirectoryError(f"{self.path} has no result.json, so it is not a finished run directory. "
                                    "The run did not finish; run the same command again to resume it.")
        result = self._validated(self.result_path, RunResult)
        assert isinstance(result, RunResult)
        return result

    def _read_json(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise RunDirectoryError(f"{self.path} has no {path.name}, so it is not a run directory.")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirectoryError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from exc
        if not isinstance(data, dict):
            raise RunDirectoryError(f"{path} should hold a JSON object.")
        return data

    def _validated(self, path: Path, model: type[BaseModel]) -> BaseModel:
        try:
            return model.model_validate(self._read_json(path))
        except ValidationError as exc:
            raise RunDirectoryError(f"{path} does not hold a {model.__name__}: {exc.errors()[0]['msg']}") from exc
