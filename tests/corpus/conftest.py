"""Fixtures of the corpus tests: small SLDBench-shaped folders, a mock hub, and a local HTTP mirror of it."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pandas as pd
import pytest

from sld.corpus import HubClient

RESOLVE_PREFIX = "/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/"
TASK = "parallel_scaling_law"


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


@dataclass
class RecordingHub:
    """A hub client on a scripted transport, and the requests it made."""

    client: HubClient
    requests: list[httpx.Request] = field(default_factory=list)


Answer = dict[str, bytes] | Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def make_hub() -> Callable[..., RecordingHub]:
    """Return ``make(answer, **options)``: a HubClient whose requests are logged and answered by ``answer``.

    ``answer`` maps raw request paths (still quoted) to bodies, others get 404; or it is a handler function.
    """

    def make(answer: Answer, **options: Any) -> RecordingHub:
        requests: list[httpx.Request] = []

        def respond(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            if callable(answer):
                return answer(request)
            body = answer.get(request.url.raw_path.decode())
            return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

        options.setdefault("base_url", "http://hub.test")
        client = HubClient(transport=httpx.MockTransport(respond), **options)
        return RecordingHub(client=client, requests=requests)

    return make


@pytest.fixture
def task_files() -> dict[str, bytes]:
    """Parquet files of a small parallel_scaling_law as the hub serves them (6 train rows, 3 test rows)."""
    return {
        f"{RESOLVE_PREFIX}{TASK}/train/0000.parquet": parquet_bytes(parallel_frame()),
        f"{RESOLVE_PREFIX}{TASK}/test/0000.parquet": parquet_bytes(parallel_frame(3)),
    }


@dataclass
class LocalHub:
    """A hub mirror served over real HTTP on 127.0.0.1."""

    url: str
    paths: list[str]


@pytest.fixture
def local_hub(tmp_path: Path, shared_sldbench: Path) -> Iterator[LocalHub]:
    """Serve a copy of two shared tasks in the hub's URL layout, and the datasets server's /parquet list."""
    mirror = tmp_path / "mirror"
    for task in (TASK, "moe_scaling_law"):
        for split in ("train", "test"):
            target = mirror / task / split / "0000.parquet"
            target.parent.mkdir(parents=True)
            shutil.copyfile(shared_sldbench / task / f"{split}.parquet", target)
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            parts = urlsplit(self.path)
            if parts.path == "/parquet":
                self._listing(parse_qs(parts.query).get("config", [""])[0])
            elif parts.path.startswith(RESOLVE_PREFIX):
                self._file(mirror / unquote(parts.path.removeprefix(RESOLVE_PREFIX)))
            else:
                self._send(404, b"not found", "text/plain")

        def _listing(self, config: str) -> None:
            host = f"http://{self.headers['Host']}"
            files = [
                {
                    "config": config,
                    "split": split,
                    "url": f"{host}{RESOLVE_PREFIX}{config}/{split}/0000.parquet",
                }
                for split in ("train", "test")
                if (mirror / config / split / "0000.parquet").is_file()
            ]
            self._send(200, json.dumps({"parquet_files": files}).encode(), "application/json")

        def _file(self, path: Path) -> None:
            if path.is_file():
                self._send(200, path.read_bytes(), "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LocalHub(url=f"http://127.0.0.1:{server.server_address[1]}", paths=paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
