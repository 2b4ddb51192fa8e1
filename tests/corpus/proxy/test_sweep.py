from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sld.commands.proxy import command
from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.data import TextCorpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import PRESETS, Preset, get_preset
from sld.corpus.proxy.sweep import COLUMNS, read_experiments, run_sweep
from sld.corpus.proxy.train import Progress, RunResult


def _refuse(
    model_config: ModelConfig,
    train_config: TrainConfig,
    corpus: TextCorpus,
    *,
    progress: Progress | None = None,
) -> RunResult:
    raise AssertionError("a finished run was trained again")


def test_sweep_records_every_run_and_resumes(tmp_path: Path, tiny_corpus: TextCorpus, tiny_preset: Preset) -> None:
    pytest.importorskip("torch")
    log: list[str] = []
    table = run_sweep(tiny_preset, tmp_path, device="cpu", corpus=tiny_corpus, log=log.append)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2
    stored = read_experiments(tmp_path / "experiments.parquet")
    pd.testing.assert_frame_equal(stored, table)
    assert set(stored["group"]) == {"tiny"}
    assert sorted(stored["tokens"]) == [256, 512]
    assert (stored["params"] == tiny_preset.models[0].non_embedding_params).all()
    assert (stored["flops"] == 6.0 * stored["params"] * stored["tokens"]).all()
    assert stored["code_version"].str.contains(r"\+proxy\.").all()
    assert (stored["data_sha256"] == tiny_corpus.sha256).all()
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert manifest["preset"] == "tiny" and manifest["data"]["sha256"] == tiny_corpus.sha256
    assert any("loss" in message for message in log)

    again = run_sweep(tiny_preset, tmp_path, device="cpu", corpus=tiny_corpus, trainer=_refuse, log=log.append)
    pd.testing.assert_frame_equal(again, table)
    assert "2 of 2 runs already" in log[-1]


def test_sweep_refuses_another_presets_folder(tmp_path: Path, tiny_corpus: TextCorpus, tiny_preset: Preset) -> None:
    pytest.importorskip("torch")
    run_sweep(tiny_preset, tmp_path, device="cpu", corpus=tiny_corpus)
    with pytest.raises(ProxyError, match="holds a sweep of preset 'tiny'"):
        run_sweep(get_preset("smoke"), tmp_path, corpus=tiny_corpus, trainer=_refuse)


def test_presets_are_known_and_grids_are_cheapest_first() -> None:
    assert {"cpu-tiny", "gpu-small", "smoke"} <= set(PRESETS)
    for preset in PRESETS.values():
        runs = preset.runs()
        costs = [model.non_embedding_params * train.tokens for model, train in runs]
        assert costs == sorted(costs)
        grid = {(model, train.tokens) for model, train in runs}
        assert preset.validation_runs()
        assert not grid & {(model, train.tokens) for model, train in preset.validation_runs()}
    with pytest.raises(ProxyError, match="Did you mean 'cpu-tiny'"):
        get_preset("cpu_tiny")


def test_cli_rejects_unknown_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, ["sweep", "--preset", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_code_version_ignores_formatting_but_not_code() -> None:
    from sld.corpus.proxy.sweep import _code_fingerprint

    source = 'import b\nimport a\n\n\ndef f(x):\n    """Doc."""\n    return x + 1  # note\n'
    reformatted = "import a\nimport b\n\ndef f(x): return x+1\n"
    changed = "import a\nimport b\n\ndef f(x): return x+2\n"
    assert _code_fingerprint(source) == _code_fingerprint(reformatted)
    assert _code_fingerprint(source) != _code_fingerprint(changed)


def test_missing_torch_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    result = CliRunner().invoke(command, ["sweep", "--preset", "smoke", "--out", str(tmp_path)])
    assert isinstance(result.exception, ProxyError)
    assert "pip install" in str(result.exception)


def test_merge_keeps_grid_order_when_a_later_run_finished_before_a_kill(tmp_path: Path) -> None:
    from sld.corpus.proxy.sweep import merge_runs, run_rows_dir

    path = tmp_path / "experiments.parquet"
    folder = run_rows_dir(path)
    folder.mkdir()

    def row(run_id: str, tokens: int) -> None:
        values = {column: 0 for column in COLUMNS} | {"run_id": run_id, "tokens": tokens}
        (folder / f"{run_id}.json").write_text(json.dumps(values))

    row("b-second", 262144)  # the grid's second run finished first; then the sweep was killed
    assert list(merge_runs(path, order=["a-first", "b-second"])["run_id"]) == ["b-second"]
    row("a-first", 131072)  # the resumed sweep trains the first
    table = merge_runs(path, order=["a-first", "b-second"])
    assert list(table["run_id"]) == ["a-first", "b-second"]
    assert list(pd.read_parquet(path)["tokens"]) == [131072, 262144]
