from __future__ import annotations

import pandas as pd
import pytest

from sld.corpus import (
    SLDBENCH_TASKS,
    CorpusNotFound,
    SchemaError,
    UnknownTaskError,
    default_cache_dir,
    load_sldbench,
)

from .conftest import COMMIT

TASK = "parallel_scaling_law"


@pytest.fixture
def refusing_hub(make_hub):
    """A hub that answers 500 to everything; tests assert it was never asked."""
    return make_hub(lambda path: (500, b"refused"))


def test_task_list_has_the_eight_benchmark_tasks():
    assert len(SLDBENCH_TASKS) == len(set(SLDBENCH_TASKS)) == 8
    assert "lr_bsz_scaling_law" in SLDBENCH_TASKS


def test_corpus_argument_keeps_the_files_columns_and_order(shared_sldbench, refusing_hub):
    for task in SLDBENCH_TASKS:
        data = load_sldbench(task, corpus=shared_sldbench, hub=refusing_hub.client)
        for split, frame in (("train", data.train), ("test", data.test)):
            expected = pd.read_parquet(shared_sldbench / task / f"{split}.parquet")
            assert frame is not None
            assert list(frame.columns) == list(expected.columns)
            pd.testing.assert_frame_equal(frame, expected)
        assert data.name == task
        assert data.source == str(shared_sldbench / task)
    assert refusing_hub.requests == []


def test_sld_corpus_env_is_used_without_argument(tmp_path, monkeypatch, write_task, refusing_hub):
    folder = write_task(tmp_path / "env_corpus")
    monkeypatch.setenv("SLD_CORPUS", str(tmp_path / "env_corpus"))
    data = load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=refusing_hub.client)
    assert data.source == str(folder)
    assert len(data.train) == 6
    assert refusing_hub.requests == []


def test_corpus_argument_beats_env(tmp_path, monkeypatch, write_task):
    write_task(tmp_path / "env_corpus")
    chosen = write_task(tmp_path / "arg_corpus", offset=1.0)
    monkeypatch.setenv("SLD_CORPUS", str(tmp_path / "env_corpus"))
    data = load_sldbench(TASK, corpus=tmp_path / "arg_corpus")
    assert data.source == str(chosen)
    assert data.train["loss"].iloc[0] == pytest.approx(4.0)


def test_env_corpus_beats_cache(tmp_path, monkeypatch, write_task):
    write_task(tmp_path / "cache")
    chosen = write_task(tmp_path / "env_corpus")
    monkeypatch.setenv("SLD_CORPUS", str(tmp_path / "env_corpus"))
    assert load_sldbench(TASK, cache_dir=tmp_path / "cache").source == str(chosen)


def test_cache_is_used_before_the_hub(tmp_path, monkeypatch, write_task, refusing_hub):
    cached = write_task(tmp_path / "cache")
    monkeypatch.setenv("SLD_CACHE", str(tmp_path / "cache"))
    data = load_sldbench(TASK, hub=refusing_hub.client)
    assert data.source == str(cached)
    assert data.test is not None and len(data.test) == 3
    assert refusing_hub.requests == []


def test_cache_dir_argument_beats_sld_cache(tmp_path, monkeypatch, write_task):
    write_task(tmp_path / "env_cache")
    chosen = write_task(tmp_path / "arg_cache")
    monkeypatch.setenv("SLD_CACHE", str(tmp_path / "env_cache"))
    assert load_sldbench(TASK, cache_dir=tmp_path / "arg_cache").source == str(chosen)


def test_default_cache_dir_is_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "sld" / "sldbench"
    monkeypatch.setenv("SLD_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"


def test_home_cache_is_found_without_settings(tmp_path, monkeypatch, write_task, refusing_hub):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cached = write_task(tmp_path / "home" / ".cache" / "sld" / "sldbench")
    assert load_sldbench(TASK, hub=refusing_hub.client).source == str(cached)
    assert refusing_hub.requests == []


def test_hub_is_last_and_its_files_are_cached(tmp_path, make_hub, task_files):
    hub = make_hub(task_files)
    first = load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert first.source == f"hub:pkuHaowei/sldbench/{TASK}@{COMMIT}"
    assert len(hub.paths("GET")) == 2 and len(hub.requests) == 4  # a HEAD and a GET per split
    assert sorted(p.name for p in (tmp_path / "cache" / TASK).iterdir()) == ["test.parquet", "train.parquet"]

    second = load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert len(hub.requests) == 4  # the second load makes no request
    assert second.source == str(tmp_path / "cache" / TASK)
    pd.testing.assert_frame_equal(first.train, second.train)
    assert list(second.train.columns) == ["num_params", "parallel_size", "group", "loss"]


def test_incomplete_cache_is_downloaded_again(tmp_path, write_task, make_hub, task_files):
    write_task(tmp_path / "cache", test=False)
    hub = make_hub(task_files)
    data = load_sldbench(TASK, cache_dir=tmp_path / "cache", hub=hub.client)
    assert data.source.startswith("hub:")
    assert data.test is not None


def test_unknown_task_lists_known_names_and_suggests_one():
    with pytest.raises(UnknownTaskError) as info:
        load_sldbench("vocab")
    message = str(info.value)
    assert "\n" not in message
    assert "Unknown task 'vocab'" in message
    assert all(task in message for task in SLDBENCH_TASKS)
    assert "Did you mean 'vocab_scaling_law'?" in message


def test_misspelled_task_is_suggested():
    with pytest.raises(UnknownTaskError, match="Did you mean 'moe_scaling_law'"):
        load_sldbench("moe_scalng_law")


def test_corpus_without_the_task_names_the_files_and_the_fix(tmp_path, write_task):
    write_task(tmp_path / "corpus", "moe_scaling_law")
    with pytest.raises(CorpusNotFound) as info:
        load_sldbench(TASK, corpus=tmp_path / "corpus")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "corpus" / TASK / "train.parquet") in message
    assert str(tmp_path / "corpus" / TASK / "test.parquet") in message
    assert "tasks found there: moe_scaling_law" in message
    assert "point --corpus at a folder with <task>/train.parquet" in message


def test_env_corpus_without_the_task_does_not_fall_back(tmp_path, monkeypatch, write_task):
    write_task(tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SLD_CORPUS", str(tmp_path / "empty"))
    with pytest.raises(CorpusNotFound, match=r"SLD_CORPUS .* has no SLDBench task"):
        load_sldbench(TASK, cache_dir=tmp_path / "cache")


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(
        CorpusNotFound, match=r"--corpus .*nowhere does not exist\. Point --corpus at a folder"
    ):
        load_sldbench(TASK, corpus=tmp_path / "nowhere")


def test_corpus_without_test_split_gives_none(tmp_path, write_task):
    data = load_sldbench(TASK, corpus=write_task(tmp_path / "corpus", test=False).parent)
    assert data.test is None


def test_damaged_cache_file_says_how_to_fix(tmp_path, write_task):
    folder = write_task(tmp_path / "cache")
    (folder / "train.parquet").write_bytes(b"not parquet")
    with pytest.raises(SchemaError) as info:
        load_sldbench(TASK, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert str(folder / "train.parquet") in message
    assert f"Delete {folder} to download the task again" in message


def test_train_and_test_with_different_columns(tmp_path, write_task):
    folder = write_task(tmp_path / "corpus")
    pd.DataFrame({"group": ["a"], "loss": [1.0]}).to_parquet(folder / "test.parquet")
    with pytest.raises(SchemaError, match=r"differ from train\.parquet"):
        load_sldbench(TASK, corpus=tmp_path / "corpus")


def test_corpus_given_as_str(tmp_path, write_task):
    folder = write_task(tmp_path / "corpus")
    assert load_sldbench(TASK, corpus=str(tmp_path / "corpus")).source == str(folder)


def test_task_data_is_frozen(tmp_path, write_task):
    data = load_sldbench(TASK, corpus=write_task(tmp_path / "corpus").parent)
    with pytest.raises(AttributeError):
        data.name = "other"


def test_corpus_pointing_at_a_task_folder_suggests_its_parent(tmp_path, write_task):
    folder = write_task(tmp_path / "corpus", "moe_scaling_law")
    with pytest.raises(CorpusNotFound) as info:
        load_sldbench(TASK, corpus=folder)
    assert f"Point --corpus at its parent, {tmp_path / 'corpus'}," in str(info.value)
