from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sld.search.archive import Archive, ArchiveEntry, expression_size
from sld.search.errors import SearchError


def entry(key: str, n_params: int, score: float, expression: str = "") -> ArchiveEntry:
    return ArchiveEntry(expression or f"law_{key}", n_params, score, source="test", key=key)


@pytest.fixture
def archive() -> Archive:
    """Three niches (2, 3, 4 constants) with two or three laws each."""
    archive = Archive()
    for key, n_params, score in [
        ("a", 2, 0.5),
        ("b", 2, 0.7),
        ("c", 3, 0.9),
        ("d", 3, 0.8),
        ("e", 3, 0.6),
        ("f", 4, 0.95),
        ("g", 4, -math.inf),
    ]:
        archive.add(entry(key, n_params, score))
    return archive


def test_keeps_the_best_per_niche(archive: Archive) -> None:
    assert [(e.key, e.n_params) for e in archive.elites()] == [("f", 4), ("c", 3), ("b", 2)]
    assert len(archive) == 7
    assert archive.add(entry("h", 3, 0.99))
    assert not archive.add(entry("i", 3, 0.1))
    assert archive.add(entry("j", 5, -1.0))  # a new niche
    assert [e.key for e in archive.elites()] == ["h", "f", "b", "j"]
    assert [e.key for e in archive.niches()[(3, 0)]] == ["c", "d", "e", "h", "i"]


def test_deduplicates_by_key_keeping_the_better_score(archive: Archive) -> None:
    assert not archive.add(entry("d", 3, 0.1))
    assert archive.add(entry("d", 3, 0.97, expression="renamed"))
    assert len(archive) == 7
    assert archive.elites()[0] == entry("d", 3, 0.97, expression="renamed")
    no_key = Archive()
    no_key.add(ArchiveEntry("A/N**alpha", 2, 0.5))
    no_key.add(ArchiveEntry("A/N**alpha", 2, 0.4))
    assert len(no_key) == 1


def test_nan_scores_rank_last() -> None:
    archive = Archive()
    archive.add(entry("nan", 2, math.nan))
    archive.add(entry("ok", 2, -5.0))
    assert archive.elites()[0].key == "ok"
    assert archive.entries()[0].score == -math.inf


def test_size_buckets_split_niches() -> None:
    assert expression_size("A/N**alpha + E") == 7
    assert expression_size("not ( valid") == 0
    archive = Archive(size_bucket=5)
    archive.add(entry("small", 2, 0.5, expression="A*N"))
    archive.add(entry("large", 2, 0.4, expression="A*log(N)**2 + log(N)"))
    assert len(archive.elites()) == 2
    assert len(Archive().niches()) == 0
    with pytest.raises(SearchError, match="size_bucket"):
        Archive(size_bucket=0)


def test_json_round_trip_resumes_exactly(archive: Archive) -> None:
    archive.add(entry("d", 3, 0.85))
    text = archive.to_json()
    restored = Archive.from_json(text)
    assert restored.entries() == archive.entries()
    assert restored.elites() == archive.elites()
    assert restored.to_json() == text
    first = archive.sample_parents(np.random.default_rng(5), 4)
    assert restored.sample_parents(np.random.default_rng(5), 4) == first
    bucketed = Archive(size_bucket=3)
    bucketed.add(entry("x", 1, 1.0))
    assert Archive.from_json(bucketed.to_json()).size_bucket == 3
    with pytest.raises(SearchError, match="not an archive checkpoint"):
        Archive.from_json('{"entries": []}')
    with pytest.raises(SearchError, match="not an archive checkpoint"):
        Archive.from_json("[")


def test_sampling_is_deterministic_and_diverse(archive: Archive) -> None:
    parents = archive.sample_parents(np.random.default_rng(0), 3)
    assert parents == archive.sample_parents(np.random.default_rng(0), 3)
    # One parent per niche while niches remain; never the law that scored -inf.
    assert sorted(p.n_params for p in parents) == [2, 3, 4]
    assert all(p.key != "g" for p in parents)
    many = archive.sample_parents(np.random.default_rng(0), 6)
    assert len({p.key for p in many}) == 6
    assert len(archive.sample_parents(np.random.default_rng(0), 50)) == 7
    assert archive.sample_parents(np.random.default_rng(0), 0) == []
    assert Archive().sample_parents(np.random.default_rng(0), 3) == []


def test_sampling_favours_good_niches_and_good_laws(archive: Archive) -> None:
    rng = np.random.default_rng(1)
    draws = Counter(archive.sample_parents(rng, 1)[0].key for _ in range(600))
    by_niche = Counter(
        {
            "4": draws["f"] + draws["g"],
            "3": draws["c"] + draws["d"] + draws["e"],
            "2": draws["a"] + draws["b"],
        }
    )
    assert by_niche["4"] > by_niche["3"] > by_niche["2"] > 0
    assert draws["c"] > draws["d"] > 0  # the tournament prefers the better laws of a niche, not only the best
    with pytest.raises(SearchError, match="tournament"):
        archive.sample_parents(rng, 1, tournament=0)
