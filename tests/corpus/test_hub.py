"""The hub loader, through ``huggingface_hub``, against a mirror served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from sld.corpus import HubClient, HubError, load_sldbench

from .conftest import COMMIT, RESOLVE_PREFIX, Request, _handler

TASK = "parallel_scaling_law"


def test_download_goes_through_the_library_and_is_cached(tmp_path, make_hub, mirror_files, shared_sldbench):
    hub = make_hub(mirror_files)
    first = load_sldbench("moe_scaling_law", cache_dir=tmp_path / "cache", hub=hub.client)
    assert first.source == f"hub:pkuHaowei/sldbench/moe_scaling_law@{COMMIT}"
    files = [f"{RESOLVE_PREFIX}moe_scaling_law/{split}/0000.parquet" for split in ("train", "test")]
    assert hub.paths("GET") == files
    assert set(hub.paths("HEAD")) == set(files)
    assert all("hf_hub/" in request.headers["user-agent"] for request in hub.requests)
    for split, frame in (("train", first.train), ("test", first.test)):
        pd.testing.assert_frame_equal(frame, pd.read_parquet(shared_sldbench / "moe_scaling_law" / f"{split}.parquet"))
    # The library's cache holds the files under the commit they resolved to.
    assert list((tmp_path / "hf-cache-0").rglob(f"snapshots/{COMMIT}/moe_scaling_law/train/0000.parquet"))

    requests = len(hub.requests)
    second = load_sldbench("moe_scaling_law", cache_dir=tmp_path / "cache", hub=hub.client)
    assert len(hub.requests) == requests  # served from sld's cache
    assert second.source == str(tmp_path / "cache" / "moe_scaling_law")


def test_library_cache_serves_a_second_sld_cache_without_downloading_again(tmp_path, make_hub, task_files):
    hub = make_hub(task_files)
    hub.client.download(TASK, tmp_path / "one")
    hub.client.download(TASK, tmp_path / "two")
    assert len(hub.paths("GET")) == 2  # the second time only HEADs ask whether the files changed
    assert (tmp_path / "two" / "train.parquet").read_bytes() == (tmp_path / "one" / "train.parquet").read_bytes()


def test_token_is_sent_and_the_revision_is_pinned(tmp_path, make_hub, task_files):
    pinned = {path.replace("refs%2Fconvert%2Fparquet", COMMIT): body for path, body in task_files.items()}
    hub = make_hub(pinned, token="hf_secret", revision=COMMIT)
    hub.client.download(TASK, tmp_path / "cache")
    assert all(path.startswith(f"/datasets/pkuHaowei/sldbench/resolve/{COMMIT}/") for path in hub.paths("GET"))
    assert all(request.headers["authorization"] == "Bearer hf_secret" for request in hub.requests)


def test_refused_access_says_to_set_hf_token(tmp_path, make_hub):
    hub = make_hub(lambda path: (401, b"unauthorized"))
    with pytest.raises(HubError) as info:
        hub.client.download(TASK, tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert "refused access" in message and "Set HF_TOKEN" in message and "--corpus PATH" in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_split_names_it_and_keeps_nothing(tmp_path, make_hub, task_files):
    del task_files[f"{RESOLVE_PREFIX}{TASK}/test/0000.parquet"]
    with pytest.raises(HubError, match=r"has no split 'test' for config 'parallel_scaling_law'.*--corpus PATH"):
        make_hub(task_files).client.download(TASK, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # train arrived but was not kept alone


@pytest.fixture
def no_backoff(monkeypatch):
    """Let the library retry without waiting between tries (it sleeps 1, 2, 4, 8, 8 s)."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_server_error_is_retried_then_becomes_hub_error_with_the_fix(tmp_path, make_hub, no_backoff):
    hub = make_hub(lambda path: (500, b"down"))
    with pytest.raises(HubError) as info:
        load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert len(hub.paths("HEAD")) > 1  # the library's own retries
    message = str(info.value)
    assert "\n" not in message and "cannot download" in message and "Pass --corpus PATH or set SLD_CORPUS" in message
    assert list((tmp_path / "cache" / TASK).iterdir()) == []


def test_unreachable_hub_becomes_hub_error(tmp_path, no_backoff):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler({}, []))
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    client = HubClient(endpoint=f"http://127.0.0.1:{port}", cache_dir=tmp_path / "hf")
    with pytest.raises(HubError, match=r"cannot download .* not in the Hugging Face cache .*--corpus PATH"):
        client.download(TASK, tmp_path / "cache")


def test_reply_that_is_not_parquet_is_refused(tmp_path, make_hub):
    hub = make_hub(lambda path: (200, b"<html>rate limited</html>"))
    with pytest.raises(HubError, match=r"did not return a parquet file \(25 bytes\)"):
        load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert list((tmp_path / "cache" / TASK).iterdir()) == []


def test_defaults_leave_endpoint_token_and_cache_to_the_library():
    client = HubClient()
    assert client.endpoint is None and client.cache_dir is None
    assert client.revision == "refs/convert/parquet"
    assert client.source(TASK) == f"hub:pkuHaowei/sldbench/{TASK}"


def _serve(files: dict[str, bytes], requests: list[Request]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files, requests))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _sld(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A fresh process, so that huggingface_hub reads HF_* when it is imported, as it does for a user.
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "SLD_"))}
    command = [sys.executable, "-c", "from sld.cli import main; main()", *args]
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_corpus_show_downloads_from_hf_endpoint_and_honours_offline_mode(tmp_path, mirror_files):
    requests: list[Request] = []
    server, url = _serve(mirror_files, requests)
    env = {"HF_HOME": str(tmp_path / "hf"), "SLD_CACHE": str(tmp_path / "cache"), "HF_TOKEN": "hf_secret"}
    try:
        offline = _sld("corpus", "show", TASK, env={**env, "HF_HUB_OFFLINE": "1"})
        assert offline.returncode == 1 and requests == []
        assert offline.stderr.startswith("error: cannot download https://huggingface.co pkuHaowei/sldbench/")
        assert "(HF_HUB_OFFLINE is set)" in offline.stderr and len(offline.stderr.strip().splitlines()) == 1

        shown = _sld("corpus", "show", TASK, env={**env, "HF_ENDPOINT": url})
        assert shown.returncode == 0, shown.stderr
        assert f"source: hub:pkuHaowei/sldbench/{TASK}@{COMMIT}" in shown.stdout
        # (The library may ask the hub's /api about itself too; only the file requests matter here.)
        assert [r.path for r in requests if r.method == "GET" and r.path.startswith("/datasets/")] == [
            f"{RESOLVE_PREFIX}{TASK}/{split}/0000.parquet" for split in ("train", "test")
        ]
        assert all(r.headers["authorization"] == "Bearer hf_secret" for r in requests if "/resolve/" in r.path)
    finally:
        server.shutdown()
        server.server_close()

    # Offline with the library's cache filled: a fresh sld cache is filled from it, without a request.
    again = _sld("corpus", "show", TASK, env={**env, "HF_HUB_OFFLINE": "1", "SLD_CACHE": str(tmp_path / "c2")})
    assert again.returncode == 0, again.stderr
    frame = pd.read_parquet(io.BytesIO(mirror_files[f"{RESOLVE_PREFIX}{TASK}/train/0000.parquet"]))
    assert f"rows: {len(frame)} train" in again.stdout


def test_hub_client_is_imported_lazily():
    code = "import sld.corpus, sys; print('huggingface_hub' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_mirror_layout_matches_the_library(tmp_path, make_hub, task_files):
    hub = make_hub(task_files)
    hub.client.download(TASK, tmp_path / "cache", splits=("train",))
    assert hub.paths("GET") == [f"{RESOLVE_PREFIX}{TASK}/train/0000.parquet"]
    assert Path(tmp_path / "cache" / "train.parquet").is_file()
