from __future__ import annotations

from sld.corpus.embedded import EXPERIMENTS_PATH, load_embedded
from sld.corpus.proxy.config import run_key
from sld.corpus.proxy.presets import get_preset
from sld.corpus.proxy.sweep import COLUMNS


def test_embedded_dataset_is_the_cpu_tiny_sweep() -> None:
    frame = load_embedded()
    assert list(frame.columns) == list(COLUMNS)
    assert set(frame["group"]) == {"cpu-tiny"}
    preset = get_preset("cpu-tiny")
    assert set(frame["run_id"]) == {run_key(model, train) for model, train in preset.runs()}
    assert frame["code_version"].nunique() == 1 and frame["data_sha256"].nunique() == 1
    # The README documents the code version and data hash that produced the rows.
    readme = EXPERIMENTS_PATH.with_name("README.md").read_text()
    assert frame["code_version"].iloc[0] in readme and frame["data_sha256"].iloc[0] in readme


def test_embedded_loss_falls_with_tokens_for_every_size() -> None:
    frame = load_embedded().sort_values(["params", "tokens"])
    for _, runs in frame.groupby("params"):
        assert runs["loss"].is_monotonic_decreasing
