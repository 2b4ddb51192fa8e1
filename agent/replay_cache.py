"""A SQLite cache of LLM replies, so a discovery run can be replayed without an endpoint.

Replies are keyed by the model name, a SHA-256 of the canonical JSON of the request (messages and
sampling parameters, but not ``response_format``, which the client may downgrade mid-run) and an occurrence
number: the k-th time a run sends the same prompt it gets the k-th reply stored for it. A replayed run
therefore follows the recorded trajectory even when it repeats a prompt, and a live run that repeats a
prompt gets a fresh reply instead of the cached one over and over.

The database is opened per operation in WAL mode with a busy timeout, so several processes (parallel
``sld discover`` runs) may share one cache file.

Examples
--------
>>> import tempfile, pathlib
>>> folder = tempfile.TemporaryDirectory()
>>> cache = ReplayCache(pathlib.Path(folder.name) / "replies.sqlite")
>>> key = prompt_key([{"role": "user", "content": "hi"}], {"temperature": 0.0})
>>> cache.put("gpt-x", key, CachedReply('{"laws": []}', prompt_tokens=3, completion_tokens=4))
>>> cache.get("gpt-x", key).content
'{"laws": []}'
>>> cache.get("gpt-x", key, occurrence=1) is None
True
>>> folder.cleanup()

"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ReplayCacheError

_SCHEMA_VERSION = 1
# Seconds a writer waits for another process's lock before giving up.
_BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    content TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model, key, occurrence)
)
"""


@dataclass(frozen=True)
class CachedReply:
    """A stored reply.

    Parameters
    ----------
    content : str
        The message content the model returned.
    prompt_tokens, completion_tokens : int
        Token counts of the original call (reported by the endpoint or estimated).
    created : float
        Unix time the reply was stored; defaults to now.

    """

    content: str
    prompt_tokens: int
    completion_tokens: int
    created: float = field(default_factory=time.time)


def prompt_key(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """Hash a request into a cache key.

    Parameters
    ----------
    messages : sequence of mappings
        The chat messages (``role``, ``content``, ...), in order.
    params : mapping
        Sampling parameters that change the reply (temperature, seed, ...). Leave ``response_format`` out: the
        same prompt asked with a downgraded format should still hit the cache.

    Returns
    -------
    str
        Hex SHA-256 of the canonical JSON (sorted keys, no whitespace) of messages and params.

    """
    payload = {"messages": [dict(m) for m in messages], "params": dict(params)}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ReplayCache:
    """Replies stored in a SQLite file, safe to share between processes.

    Parameters
    ----------
    path : str or Path
        Database file; created with its parent folders if missing.

    Raises
    ------
    ReplayCacheError
        If the file exists but is not a replay cache (or not a SQLite database), or cannot be created.

    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                # WAL lets readers proceed while another process writes; the mode persists in the file.
                conn.execute("PRAGMA journal_mode=WAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise ReplayCacheError(
                        f"Replay cache {self.path} has schema version {version}, this sld reads version "
                        f"{_SCHEMA_VERSION}; delete the file or choose another cache path."
                    )
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise ReplayCacheError(
                f"Cannot open replay cache {self.path}: {exc}; delete the file or choose another cache path."
            ) from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Open a connection for one operation, commit on success and always close it."""
        with closing(sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)) as conn:
            conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
            with conn:  # a transaction: commit, or roll back on error
                yield conn

    def get(self, model: str, key: str, *, occurrence: int = 0) -> CachedReply | None:
        """Return the stored reply for ``(model, key, occurrence)``, or None.

        Parameters
        ----------
        model : str
            Model name the reply came from.
        key : str
            Request hash from :func:`prompt_key`.
        occurrence : int, default 0
            Which repetition of this request within a run (0 for the first).

        Returns
        -------
        CachedReply or None
            None on a miss.

        """
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT content, prompt_tokens, completion_tokens, created FROM replies "
                    "WHERE model = ? AND key = ? AND occurrence = ?",
                    (model, key, occurrence),
                ).fetchone()
        except sqlite3.Error as exc:
            raise ReplayCacheError(f"Cannot read replay cache {self.path}: {exc}") from exc
        if row is None:
            return None
        return CachedReply(content=row[0], prompt_tokens=row[1], completion_tokens=row[2], created=row[3])

    def put(self, model: str, key: str, reply: CachedReply, *, occurrence: int = 0) -> None:
        """Store a reply; an existing entry for the same ``(model, key, occurrence)`` is kept.

        Keeping the first writer's reply means two processes racing on one prompt both replay the same one.

        Parameters
        ----------
        model : str
            Model name the reply came from.
        key : str
            Request hash from :func:`prompt_key`.
        reply : CachedReply
            What to store.
        occurrence : int, default 0
            Which repetition of this request within a run (0 for the first).

        """
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO replies "
                    "(model, key, occurrence, content, prompt_tokens, completion_tokens, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        model,
                        key,
                        occurrence,
                        reply.content,
                        reply.prompt_tokens,
                        reply.completion_tokens,
                        reply.created,
                    ),
                )
        except sqlite3.Error as exc:
            raise ReplayCacheError(f"Cannot write replay cache {self.path}: {exc}") from exc

    def __len__(self) -> int:
        try:
            with self._connect() as conn:
                return int(conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
        except sqlite3.Error as exc:
            raise ReplayCacheError(f"Cannot read replay cache {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"ReplayCache({str(self.path)!r})"
