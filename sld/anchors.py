"""Published SLDBench leaderboard numbers (``shared/reference/sldbench_anchors.json``) for comparison tables."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HUMAN = "human-derived laws"
SLDAGENT_GPT5 = "SLDAgent (GPT-5)"


@dataclass(frozen=True)
class Anchors:
    """Per-task test R^2 of published systems.

    Attributes
    ----------
    r2 : dict
        ``{system: {task: r2}}``.
    source : str
        File the numbers were read from.
    """

    r2: dict[str, dict[str, float]]
    source: str

    def get(self, system: str, task: str) -> float | None:
        """Return a system's published R^2 on a task, or ``None`` if not listed."""
        return self.r2.get(system, {}).get(task)


def find_anchors(corpus: str | Path | None = None) -> Path | None:
    """Locate the anchors file: ``SLD_ANCHORS``, else ``reference/`` beside the SLDBench corpus folder."""
    candidates: list[Path] = []
    if os.environ.get("SLD_ANCHORS"):
        candidates.append(Path(os.environ["SLD_ANCHORS"]))
    for root in (corpus, os.environ.get("SLD_CORPUS")):
        if root:
            candidates.append(Path(root).parent / "reference" / "sldbench_anchors.json")
    return next((path for path in candidates if path.is_file()), None)


def load_anchors(corpus: str | Path | None = None) -> Anchors | None:
    """Read the published anchors, or return ``None`` when no anchors file is found."""
    path = find_anchors(corpus)
    if path is None:
        return None
    raw = json.loads(path.read_text())
    r2 = {system: dict(entry.get("r2", {})) for system, entry in raw.get("systems", {}).items()}
    r2["best single run"] = dict(raw.get("best_single_run_any_system", {}))
    return Anchors(r2=r2, source=str(path))
