"""Fixtures of the corpus tests: small SLDBench-shaped folders and a hub mirror served on 127.0.0.1.

The mirror speaks what ``huggingface_hub.hf_hub_download`` asks of the hub: ``HEAD`` of a file's ``resolve`` URL
(answered with the commit, ETag and size headers the library reads) and ``GET`` of its body.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sld.corpus import HubClient

RESOLVE_PREFIX = "/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/"
TASK = "parallel_scaling_law"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the commit the mirror says refs/convert/parquet is at


def parallel_frame(n: int = 6, *, offset: float = 0.0) -> pd.DataFrame:
    """Return a small frame with parallel_scaling_law's columns, in the dataset's order."""
    return pd.DataFrame(
        {
            "num_params": [10**8 * (i + 1) for i in range(n)],
            "parallel_size": [(1, 2, 4)[i % 3] for i in range(n)],
            "group": [("stack", "pile")[i % 2] for i in range(n)],
            "loss": [3.0 - 0.1 * i + offset for i in range(n)],
        }
    )


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame serialized as parquet."""
    data = frame.to_parquet(index=False)
    assert data is not None
    return data


@pytest.fixture
def write_task() -> Callable[..., Path]:
    """Return ``write(root, task=..., *, test=True, offset=0.0)``, which writes a small task folder."""

    def write(root: Path, task: str = TASK, *, test: bool = True, offset: float = 0.0) -> Path:
        folder = root / task
        folder.mkdir(parents=True, exist_ok=True)
        parallel_frame(offset=offset).to_parquet(folder / "train.parquet", index=False)
        if test:
            parallel_frame(3, offset=offset).to_parquet(folder / "test.parquet", index=False)
        return folder

    return write


@dataclass(frozen=True)
class Request:
    """One request the mirror received: method, raw (still quoted) path and headers (names lower-case)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingHub:
    """A hub client pointed at a mirror on 127.0.0.1, and the requests the mirror received."""

    client: HubClient
    url: str
    requests: list[Request] = field(default_factory=list)

    def paths(self, method: str = "GET") -> list[str]:
        """Return the paths of the requests with ``method``, in order."""
        return [request.path for request in self.requests if request.method == method]


# Raw request path -> body (other paths get 404), or a function of the raw path -> (status, body).
Answer = dict[str, bytes] | Callable[[str], tuple[int, bytes]]


def _handler(answer: Answer, requests: list[Request]) -> type[BaseHTTPRequestHandler]:
    def respond(path: str) -> tuple[int, bytes]:
        if callable(answer):
            return answer(path)
        body = answer.get(path)
        return (200, body) if body is not None else (404, b"not found")

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def _answer(self, *, with_body: bool) -> None:
            requests.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, body = respond(self.path)
            self.send_response(status)
            if status == 404:
                # How the hub says a file is missing at an existing revision.
                self.send_header("X-Error-Code", "EntryNotFound")
            if status == 200:
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., RecordingHub]]:
    """Return ``make(answer, **options)``: a HubClient on its own mirror on 127.0.0.1 and its own cache."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
    counter = itertools.count()

    def make(answer: Answer, **options: Any) -> RecordingHub:
        requests: list[Request] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer, requests))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        servers.append((server, thread))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        options.setdefault("endpoint", url)
        options.setdefault("cache_dir", tmp_path / f"hf-cache-{next(counter)}")
        return RecordingHub(client=HubClient(**options), url=url, requests=requests)

    yield make
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def task_files() -> dict[str, bytes]:
    """Parquet files of a small parallel_scaling_law as the hub serves them (6 train rows, 3 test rows)."""
    return {
        f"{RESOLVE_PREFIX}{TASK}/train/0000.parquet": parquet_bytes(parallel_frame()),
        f"{RESOLVE_PREFIX}{TASK}/test/0000.parquet": parquet_bytes(parallel_frame(3)),
    }


@pytest.fixture
def mirror_files(shared_sldbench: Path) -> dict[str, bytes]:
    """Two shared SLDBench tasks' files, at the raw paths the hub serves them under."""
    return {
        f"{RESOLVE_PREFIX}{task}/{split}/0000.parquet": (shared_sldbench / task / f"{split}.parquet").read_bytes()
        for task in (TASK, "moe_scaling_law")
        for split in ("train", "test")
    }
