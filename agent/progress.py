"""What a discovery run tells while it works: notes, evaluated candidates, and a status after every round.

:class:`Progress` is what the discovery graph reports to; it ignores everything (``--quiet``).
:class:`LineProgress` hands every line to a callable (tests, logs); :class:`PlainProgress` writes the notes and
one line per round to a stream that is not a terminal (CI logs); :class:`RichProgress` draws a live bar per target
on a terminal: budget used, candidates evaluated, the current best law and its validation score.
:func:`make_progress` picks one for the CLI.

Example
-------
>>> lines = []
>>> progress = LineProgress(lines.append)
>>> progress.round_done(RoundStatus("loss", 0, spent_s=1.0, budget_s=10.0, candidates=5, best_law="E + A/N",
...                                 best_r2=0.9))
>>> lines
['loss: round 0 done: 5 candidates, 1 s of 10 s; best val R^2 0.9000 E + A/N']
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sld.search.candidates import Candidate


@dataclass(frozen=True)
class RoundStatus:
    """Where one target's search stands after a round."""

    target: str
    round: int
    spent_s: float
    budget_s: float
    candidates: int
    best_law: str | None
    best_r2: float | None

    def line(self) -> str:
        """Return the status as one plain line."""
        best = "nothing validated yet" if self.best_law is None else (
            f"best val R^2 {self.best_r2:.4f} {self.best_law[:90]}")
        return (f"{self.target}: round {self.round} done: {self.candidates} candidates, "
                f"{self.spent_s:.0f} s of {self.budget_s:.0f} s; {best}")


def candidate_line(target: str, candidate: Candidate) -> str:
    """Return the line that reports one validated candidate."""
    return (f"{target}: [{candidate.source}] val R^2 {candidate.validation_r2:.4f} ({candidate.n_params} constants) "
            f"{candidate.identity[:90]}")


class Progress:
    """Receives what a run reports; this base class ignores everything (``--quiet``)."""

    def note(self, line: str) -> None:
        """Report a run-level event (a target starts or is chosen, the LLM stops, a resume)."""

    def candidate(self, target: str, candidate: Candidate) -> None:
        """Report one validated candidate."""

    def round_done(self, status: RoundStatus) -> None:
        """Report where a target stands after a round."""

    def close(self) -> None:
        """End the display."""


class LineProgress(Progress):
    """Hands every note, validated candidate and round status to ``sink`` as one line."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink

    def note(self, line: str) -> None:
        """Pass the note on."""
        self.sink(line)

    def candidate(self, target: str, candidate: Candidate) -> None:
        """Pass the candidate's line on."""
        self.sink(candidate_line(target, candidate))

    def round_done(self, status: RoundStatus) -> None:
        """Pass the status line on."""
        self.sink(status.line())


class PlainProgress(LineProgress):
    """Notes and one line per round on a stream (no per-candidate lines: CI logs stay short)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(lambda line: print(line, file=stream, flush=True))

    def candidate(self, target: str, candidate: Candidate) -> None:
        """Say nothing: the round's line gives the best candidate."""


class RichProgress(Progress):
    """A live progress bar per target on a terminal, with notes printed above the bars."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars

        self.console = Console(file=stream)
        self.bars = Bars(TextColumn("{task.fields[target]}"), BarColumn(), TextColumn("{task.fields[status]}"),
                         TimeElapsedColumn(), console=self.console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.bars.start()

    def note(self, line: str) -> None:
        """Print the note above the bars."""
        self.console.print(line, markup=False, highlight=False)

    def candidate(self, target: str, candidate: Candidate) -> None:
        """Count the candidate on the target's bar."""
        self._bar(target)

    def round_done(self, status: RoundStatus) -> None:
        """Move the target's bar to the budget used and show its best law."""
        best = "no law yet" if status.best_law is None else f"val R^2 {status.best_r2:.4f} {status.best_law[:60]}"
        self.bars.update(self._bar(status.target), total=status.budget_s, completed=min(status.spent_s,
                         status.budget_s), status=f"round {status.round}, {status.candidates} candidates, {best}")

    def _bar(self, target: str) -> Any:
        if target not in self.tasks:
            self.tasks[target] = self.bars.add_task("", total=None, target=target, status="starting")
        return self.tasks[target]

    def close(self) -> None:
        """Stop the live display."""
        self.bars.stop()


def make_progress(*, quiet: bool, stream: TextIO | None = None) -> Progress:
    """Return the CLI's progress: nothing when ``quiet``, bars on a terminal, else one line per round."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return Progress()
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)
