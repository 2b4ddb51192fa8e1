"""A MAP-Elites archive of evaluated laws, kept diverse by complexity.

Each law lands in a niche given by its number of constants (and, optionally, a bucket of its expression
size); the archive remembers every distinct law (by canonical key) and reports the best one of each niche.
Parents for evolution are drawn from several niches, good niches more often, by a small tournament inside
each, so that simple and rich laws keep evolving side by side (Mouret & Clune 2015, "Illuminating search
spaces by mapping elites").

Example
-------
>>> import numpy as np
>>> from sld.search.archive import Archive, ArchiveEntry
>>> archive = Archive()
>>> archive.add(ArchiveEntry("A/N**alpha + E", n_params=3, score=0.90, key="k1"))
True
>>> archive.add(ArchiveEntry("A/N**alpha", n_params=2, score=0.80, key="k2"))
True
>>> archive.add(ArchiveEntry("A*N**(-alpha) + E", n_params=3, score=0.95, key="k1"))
True
>>> [e.score for e in archive.elites()]
[0.95, 0.8]
>>> len(archive.sample_parents(np.random.default_rng(0), 2))
2
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sld.search.errors import SearchError

Niche = tuple[int, int]


@dataclass(frozen=True)
class ArchiveEntry:
    """One evaluated law.

    Attributes
    ----------
    expression : str
        The law text.
    n_params : int
        Its number of constants (the complexity axis of the archive).
    score : float
        Higher is better (e.g. minus the validation objective); NaN counts as ``-inf``.
    source : str, default ""
        The generator that proposed it (``family``, ``evolution``, ``llm``...).
    key : str, default ""
        Canonical key (`Law.canonical_key`): entries with the same key are the same law. Empty: the
        expression text is used.
    """

    expression: str
    n_params: int
    score: float
    source: str = ""
    key: str = ""

    @property
    def identity(self) -> str:
        """The key that de-duplicates entries: `key`, or the expression when no key was given."""
        return self.key or self.expression


def expression_size(text: str) -> int:
    """Count the nodes of a law's text (names, numbers, operators, calls); 0 if it does not parse.

    The text is only parsed into a syntax tree, never evaluated.

    Examples
    --------
    >>> expression_size("A/N**alpha + E")
    7
    """
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0
    return sum(isinstance(node, ast.expr) for node in ast.walk(tree))


class Archive:
    """Laws by niche (number of constants, optionally an expression-size bucket); best per niche.

    Parameters
    ----------
    size_bucket : int or None, default None
        If given, niches also split by ``expression_size(expression) // size_bucket``; None: by number of
        constants alone.

    Raises
    ------
    SearchError
        If ``size_bucket`` is not a positive integer.
    """

    def __init__(self, *, size_bucket: int | None = None) -> None:
        if size_bucket is not None and size_bucket < 1:
            raise SearchError(f"size_bucket must be a positive integer or None, got {size_bucket}")
        self.size_bucket = size_bucket
        # Insertion order is kept (and checkpointed): sampling and tie-breaks depend only on it.
        self._entries: dict[str, ArchiveEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def niche(self, entry: ArchiveEntry) -> Niche:
        """Return the niche of an entry: ``(n_params, size bucket)``, the bucket 0 without ``size_bucket``."""
        bucket = 0 if self.size_bucket is None else expression_size(entry.expression) // self.size_bucket
        return (entry.n_params, bucket)

    def add(self, entry: ArchiveEntry) -> bool:
        """Add an evaluated law; a law already present (same key) keeps the better of its two scores.

        Parameters
        ----------
        entry : ArchiveEntry
            The law and its score; a NaN score is stored as ``-inf``.

        Returns
        -------
        bool
            True when the entry is now the best of its niche (a new niche, or better than the elite).
        """
        if math.isnan(entry.score):
            entry = ArchiveEntry(entry.expression, entry.n_params, -math.inf, entry.source, entry.key)
        known = self._entries.get(entry.identity)
        if known is not None and not entry.score > known.score:
            return False
        niche = self.niche(entry)
        elite = self._elite(niche)
        self._entries[entry.identity] = entry
        return elite is None or elite.identity == entry.identity or entry.score > elite.score

    def entries(self) -> list[ArchiveEntry]:
        """Return every distinct law, in the order first added."""
        return list(self._entries.values())

    def niches(self) -> dict[Niche, list[ArchiveEntry]]:
        """Return the members of each occupied niche (sorted by niche), in the order first added."""
        members: dict[Niche, list[ArchiveEntry]] = {}
        for entry in self._entries.values():
            members.setdefault(self.niche(entry), []).append(entry)
        return dict(sorted(members.items()))

    def elites(self) -> list[ArchiveEntry]:
        """Return the best law of each niche, best first (ties: fewer constants, then text)."""
        best = [_best(members) for members in self.niches().values()]
        return sorted(best, key=lambda e: (-e.score, e.n_params, e.expression))

    def sample_parents(self, rng: np.random.Generator, k: int, *, tournament: int = 2) -> list[ArchiveEntry]:
        """Draw parents: niches chosen by the rank of their elite, then a tournament inside each.

        Niches are drawn without replacement while unused ones remain (diversity first), with probability
        proportional to ``n_niches - rank`` of their elite (the best niche weighs most, the worst still
        counts). Within a niche, the best of ``tournament`` members drawn at random wins; members already
        drawn are avoided while others remain. Niches whose members all scored ``-inf`` are used only when
        no other is left.

        Parameters
        ----------
        rng : numpy.random.Generator
            The only source of randomness: the same archive and seed give the same parents.
        k : int
            Number of parents; fewer are returned only when the archive has fewer laws.
        tournament : int, default 2
            Tournament size (1: uniform within the niche).

        Returns
        -------
        list of ArchiveEntry
            Distinct laws, at most ``k``.

        Raises
        ------
        SearchError
            If ``tournament`` is less than 1.
        """
        if tournament < 1:
            raise SearchError(f"tournament size must be at least 1, got {tournament}")
        niches = self.niches()
        scored = [members for members in niches.values() if any(e.score > -math.inf for e in members)]
        pool = scored or list(niches.values())
        pool.sort(key=lambda members: (-_best(members).score, self.niche(members[0])))
        chosen: list[ArchiveEntry] = []
        taken: set[str] = set()
        remaining = list(range(len(pool)))
        k = min(k, sum(len(members) for members in pool))
        while len(chosen) < k:
            if not remaining:
                remaining = [i for i, members in enumerate(pool) if any(e.identity not in taken for e in members)]
            weights = np.array([len(pool) - i for i in remaining], dtype=float)
            index = remaining.pop(int(rng.choice(len(remaining), p=weights / weights.sum())))
            fresh = [e for e in pool[index] if e.identity not in taken]
            contestants = rng.choice(len(fresh), size=min(tournament, len(fresh)), replace=False)
            winner = _best([fresh[int(i)] for i in sorted(contestants)])
            chosen.append(winner)
            taken.add(winner.identity)
        return chosen

    def to_json(self) -> str:
        """Return the archive as JSON text (non-finite scores become ``null``), for checkpoints."""
        entries = [asdict(e) | {"score": e.score if math.isfinite(e.score) else None} for e in self._entries.values()]
        return json.dumps({"size_bucket": self.size_bucket, "entries": entries}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Archive:
        """Rebuild an archive from `to_json` output; it samples exactly as the original did.

        Raises
        ------
        SearchError
            If the text is not an archive checkpoint.
        """
        try:
            data: Any = json.loads(text)
            archive = cls(size_bucket=data["size_bucket"])
            for item in data["entries"]:
                score = -math.inf if item["score"] is None else float(item["score"])
                archive.add(
                    ArchiveEntry(
                        str(item["expression"]),
                        int(item["n_params"]),
                        score,
                        str(item["source"]),
                        str(item["key"]),
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise SearchError(f"not an archive checkpoint ({type(exc).__name__}: {exc})") from exc
        return archive

    def _elite(self, niche: Niche) -> ArchiveEntry | None:
        members = [e for e in self._entries.values() if self.niche(e) == niche]
        return _best(members) if members else None


def _best(members: list[ArchiveEntry]) -> ArchiveEntry:
    """Return the highest-scoring entry; ties go to the one added first."""
    return max(members, key=lambda e: e.score)
