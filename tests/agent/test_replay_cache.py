"""The SQLite replay cache: round trips, keys, persistence, and several writer processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from sld.agent.errors import ReplayCacheError
from sld.agent.replay_cache import CachedReply, ReplayCache, prompt_key

MESSAGES = [{"role": "user", "content": "Propose laws."}]


def content(cache: ReplayCache, key: str, occurrence: int = 0) -> str:
    stored = cache.get("m", key, occurrence=occurrence)
    assert stored is not None
    return str(stored.content)


def test_put_get_round_trip(replay_cache: ReplayCache) -> None:
    key = prompt_key(MESSAGES, {"temperature": 0.7, "seed": 0})
    reply = CachedReply('{"laws": []}', prompt_tokens=12, completion_tokens=3, created=1_700_000_000.0)

    assert replay_cache.get("m", key) is None
    replay_cache.put("m", key, reply)

    assert replay_cache.get("m", key) == reply
    assert replay_cache.get("other-model", key) is None
    assert replay_cache.get("m", key, occurrence=1) is None
    assert len(replay_cache) == 1


def test_first_writer_wins(replay_cache: ReplayCache) -> None:
    replay_cache.put("m", "k", CachedReply("first", 1, 1))
    replay_cache.put("m", "k", CachedReply("second", 1, 1))
    replay_cache.put("m", "k", CachedReply("next", 1, 1), occurrence=1)
    assert content(replay_cache, "k") == "first"
    assert content(replay_cache, "k", occurrence=1) == "next"


def test_created_defaults_to_now(replay_cache: ReplayCache) -> None:
    replay_cache.put("m", "k", CachedReply("x", 1, 1))
    stored = replay_cache.get("m", "k")
    assert stored is not None and stored.created > 1_700_000_000


def test_prompt_key_is_canonical() -> None:
    a = prompt_key([{"role": "user", "content": "hi"}], {"temperature": 0.7, "seed": 0})
    b = prompt_key([{"content": "hi", "role": "user"}], {"seed": 0, "temperature": 0.7})
    assert a == b
    assert len(a) == 64
    assert a != prompt_key([{"role": "user", "content": "hi "}], {"temperature": 0.7, "seed": 0})
    assert a != prompt_key([{"role": "user", "content": "hi"}], {"temperature": 0.2, "seed": 0})


def test_persists_across_instances_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "replies.sqlite"
    ReplayCache(path).put("m", "k", CachedReply("kept", 2, 3))
    assert ReplayCache(path).get("m", "k") == ReplayCache(path).get("m", "k")
    assert content(ReplayCache(path), "k") == "kept"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(ReplayCacheError, match="delete the file or choose another cache path"):
        ReplayCache(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(ReplayCacheError, match="schema version 99"):
        ReplayCache(path)


def test_concurrent_writer_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    ReplayCache(path)
    writer = textwrap.dedent(
        """
        import sys
        from sld.agent.replay_cache import CachedReply, ReplayCache
        cache = ReplayCache(sys.argv[1])
        worker = sys.argv[2]
        for i in range(40):
            cache.put("m", f"{worker}-{i}", CachedReply(f"reply {worker} {i}", i, i))
            cache.put("m", "contested", CachedReply(f"from {worker}", 1, 1))
            assert cache.get("m", f"{worker}-{i}") is not None
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, str(path), str(w)], stderr=subprocess.PIPE)
        for w in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], errors

    cache = ReplayCache(path)
    assert len(cache) == 4 * 40 + 1
    stored = cache.get("m", "2-39")
    assert stored is not None
    assert (stored.content, stored.prompt_tokens, stored.completion_tokens) == ("reply 2 39", 39, 39)
    assert content(cache, "contested").startswith("from ")
