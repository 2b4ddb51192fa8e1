from __future__ import annotations

import io
import json

import httpx
import pandas as pd
import pytest

from sld.corpus import HubClient, HubError, load_sldbench

TASK = "parallel_scaling_law"
PREFIX = "/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/"


def test_download_from_a_local_mirror_over_http(tmp_path, monkeypatch, local_hub, shared_sldbench):
    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("SLD_CACHE", str(tmp_path / "cache"))
    first = load_sldbench("moe_scaling_law")
    assert first.source == "hub:pkuHaowei/sldbench/moe_scaling_law"
    assert local_hub.paths == [
        f"{PREFIX}moe_scaling_law/train/0000.parquet",
        f"{PREFIX}moe_scaling_law/test/0000.parquet",
    ]
    for split, frame in (("train", first.train), ("test", first.test)):
        pd.testing.assert_frame_equal(
            frame, pd.read_parquet(shared_sldbench / "moe_scaling_law" / f"{split}.parquet")
        )

    second = load_sldbench("moe_scaling_law")
    assert len(local_hub.paths) == 2  # served from the cache
    assert second.source == str(tmp_path / "cache" / "moe_scaling_law")


def test_listing_from_a_local_datasets_server(local_hub):
    urls = HubClient(base_url=local_hub.url).parquet_urls(TASK)
    assert urls == {
        "train": [f"{local_hub.url}{PREFIX}{TASK}/train/0000.parquet"],
        "test": [f"{local_hub.url}{PREFIX}{TASK}/test/0000.parquet"],
    }
    assert local_hub.paths == ["/parquet?dataset=pkuHaowei%2Fsldbench&config=parallel_scaling_law"]


def test_offline_mode_fails_fast_without_a_request(tmp_path, monkeypatch, make_hub, task_files):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = make_hub(task_files)
    with pytest.raises(HubError) as info:
        load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    message = str(info.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE" in message
    assert "--corpus PATH or set SLD_CORPUS" in message
    assert hub.requests == []
    assert not (tmp_path / "cache" / TASK).exists()


def test_offline_mode_still_reads_the_cache(tmp_path, monkeypatch, make_hub, task_files):
    make_hub(task_files).client.download(TASK, tmp_path / "cache" / TASK)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_sldbench(TASK, cache_dir=tmp_path / "cache").source == str(tmp_path / "cache" / TASK)


def test_network_failure_becomes_hub_error_with_the_fix(tmp_path, make_hub):
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(HubError) as info:
        load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=make_hub(unreachable).client)
    message = str(info.value)
    assert "\n" not in message
    assert "cannot download http://hub.test/datasets/pkuHaowei/sldbench" in message
    assert "ConnectError: connection refused" in message
    assert "Pass --corpus PATH or set SLD_CORPUS" in message
    assert list((tmp_path / "cache" / TASK).iterdir()) == []


def test_failed_split_leaves_no_split_in_the_cache(tmp_path, make_hub, task_files):
    del task_files[f"{PREFIX}{TASK}/test/0000.parquet"]

    def answer(request: httpx.Request) -> httpx.Response:
        body = task_files.get(request.url.raw_path.decode())
        return httpx.Response(200, content=body) if body else httpx.Response(502)

    with pytest.raises(HubError, match="answered HTTP 502"):
        make_hub(answer).client.download(TASK, tmp_path / "cache" / TASK)
    assert list((tmp_path / "cache" / TASK).iterdir()) == []  # train arrived but was not kept alone


def test_hf_endpoint_and_token_are_used(tmp_path, monkeypatch, make_hub, task_files):
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.test/")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    hub = make_hub(task_files, base_url=None)
    hub.client.download(TASK, tmp_path / "cache")
    assert [str(r.url) for r in hub.requests] == [
        f"http://mirror.test{PREFIX}{TASK}/train/0000.parquet",
        f"http://mirror.test{PREFIX}{TASK}/test/0000.parquet",
    ]
    assert all(r.headers["Authorization"] == "Bearer hf_secret" for r in hub.requests)


def test_defaults_point_at_hugging_face():
    client = HubClient()
    assert client.base_url == "https://huggingface.co"
    assert client.server_url == "https://datasets-server.huggingface.co"
    assert not client.offline
    assert client.file_url(TASK, "test") == f"https://huggingface.co{PREFIX}{TASK}/test/0000.parquet"


def test_refused_access_says_to_set_hf_token(tmp_path, make_hub):
    with pytest.raises(HubError) as info:
        make_hub(lambda request: httpx.Response(401)).client.download(TASK, tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert "HTTP 401" in message and "Set HF_TOKEN" in message and "--corpus PATH" in message


def test_reply_that_is_not_parquet_is_refused(tmp_path, make_hub):
    hub = make_hub(lambda request: httpx.Response(200, content=b"<html>rate limited</html>"))
    with pytest.raises(HubError, match=r"did not return a parquet file \(25 bytes\)"):
        load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert list((tmp_path / "cache" / TASK).iterdir()) == []


def test_listed_shards_are_used_when_the_conventional_file_is_missing(tmp_path, make_hub, task_files):
    train = pd.read_parquet(io.BytesIO(task_files[f"{PREFIX}{TASK}/train/0000.parquet"]))
    shards = {
        "/shards/train-a.parquet": train.iloc[:4].to_parquet(index=False),
        "/shards/train-b.parquet": train.iloc[4:].to_parquet(index=False),
        "/shards/test.parquet": task_files[f"{PREFIX}{TASK}/test/0000.parquet"],
    }
    files = "http://files.test/shards"
    listing = {
        "parquet_files": [
            {"config": TASK, "split": "train", "url": f"{files}/train-b.parquet", "filename": "0001.parquet"},
            {"config": TASK, "split": "train", "url": f"{files}/train-a.parquet", "filename": "0000.parquet"},
            {"config": TASK, "split": "test", "url": f"{files}/test.parquet", "filename": "0000.parquet"},
        ]
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "datasets-server.test":
            return httpx.Response(200, content=json.dumps(listing).encode())
        body = shards.get(request.url.path)
        return httpx.Response(200, content=body) if body else httpx.Response(404)

    hub = make_hub(answer, server_url="http://datasets-server.test")
    data = load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    pd.testing.assert_frame_equal(data.train, train)
    listings = [r for r in hub.requests if r.url.host == "datasets-server.test"]
    assert len(listings) == 1  # asked once for both splits


def test_missing_split_in_the_listing(tmp_path, make_hub):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/parquet":
            return httpx.Response(200, json={"parquet_files": []})
        return httpx.Response(404)

    with pytest.raises(
        HubError, match=r"has no split 'train' for config 'parallel_scaling_law'.*splits listed: none"
    ):
        make_hub(answer).client.download(TASK, tmp_path / "cache")


def test_listing_that_is_not_json(make_hub):
    with pytest.raises(HubError, match="did not answer with a parquet file list"):
        make_hub(lambda request: httpx.Response(200, content=b"oops")).client.parquet_urls(TASK)
