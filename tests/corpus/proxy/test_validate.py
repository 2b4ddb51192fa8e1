from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sld.commands.proxy import command, validate_command
from sld.corpus.proxy.config import ModelConfig, TrainConfig
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import Preset
from sld.corpus.proxy.sweep import read_experiments, run_sweep
from sld.corpus.proxy.train import Progress, RunResult
from sld.proxy_validation import CHINCHILLA, choose_runs, discovered_laws, validate_sweep

from .conftest import write_source_tree

# Hoffmann et al. 2022's published fit, Eq. 10; the fake runs follow it exactly.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def chinchilla_loss(params: float, tokens: float) -> float:
    return float(E + A / params**ALPHA + B / tokens**BETA)


class FakeTrainer:
    """Returns the Chinchilla loss of a run instead of training it; records what it was asked."""

    def __init__(self, validation_dir: Path | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.validation_dir = validation_dir

    def __call__(
        self, model: ModelConfig, train: TrainConfig, corpus: TextCorpus, *, progress: Progress | None = None
    ) -> RunResult:
        if self.validation_dir is not None:
            # Pre-registration: the predictions are on disk before any validation run is trained.
            assert list(self.validation_dir.glob("predictions-*.json"))
        tokens = train.steps(model.block_size) * train.batch_size * model.block_size
        self.calls.append((model.non_embedding_params, tokens))
        return RunResult(
            val_loss=chinchilla_loss(model.non_embedding_params, tokens),
            train_loss=0.0,
            tokens=tokens,
            steps=train.steps(model.block_size),
            non_embedding_params=model.non_embedding_params,
            total_params=model.non_embedding_params + model.embedding_params,
            train_time_s=0.0,
            wall_time_s=0.0,
            tokens_per_s=0.0,
            device="fake",
            dtype="float32",
        )


@pytest.fixture
def synthetic_preset() -> Preset:
    """A 3-size x 4-budget grid with larger validation candidates."""
    models = tuple(
        ModelConfig(n_layer=layers, n_head=2, n_embd=width) for layers, width in ((1, 32), (2, 64), (4, 128))
    )
    return Preset(
        name="synthetic",
        models=models,
        tokens=(2**20, 2**22, 2**24, 2**26),
        validation_models=(ModelConfig(n_layer=8, n_head=4, n_embd=256),),
        validation_tokens=(2**28,),
        n_validation=2,
    )


@pytest.fixture
def synthetic_sweep(tmp_path: Path, tiny_corpus: TextCorpus, synthetic_preset: Preset) -> Path:
    """A sweep folder whose 12 runs follow the Chinchilla law exactly."""
    run_sweep(synthetic_preset, tmp_path / "sweep", corpus=tiny_corpus, trainer=FakeTrainer())
    return tmp_path / "sweep"


def test_validate_preregisters_trains_and_scores(
    synthetic_sweep: Path, tiny_corpus: TextCorpus, synthetic_preset: Preset
) -> None:
    trainer = FakeTrainer(synthetic_sweep / "validation")
    report = validate_sweep(synthetic_sweep, preset=synthetic_preset, corpus=tiny_corpus, trainer=trainer)
    assert len(trainer.calls) == 2
    laws = {law["expression"]: law for law in report["laws"]}
    assert len(laws) == 3
    chinchilla = report["laws"][0]
    assert chinchilla["source"].startswith("literature")
    assert chinchilla["abs_rel_error"] < 1e-3
    assert report["best_abs_rel_error"] == chinchilla["abs_rel_error"]
    np.testing.assert_allclose(chinchilla["constants"]["alpha"], ALPHA, rtol=0.05)
    expected = [chinchilla_loss(params, tokens) for params, tokens in trainer.calls]
    np.testing.assert_allclose(chinchilla["observed"], expected)
    for law in report["laws"]:
        assert len(law["predicted"]) == len(law["observed"]) == 2

    registered = json.loads(Path(report["predictions_file"]).read_text())
    chosen = [c for c in registered["candidates"] if c["chosen"]]
    assert {c["run_id"] for c in chosen} == {run["run_id"] for run in report["runs"]}
    # The chosen runs are those where the laws disagree most.
    spreads = sorted((c["spread"] for c in registered["candidates"]), reverse=True)
    assert sorted(c["spread"] for c in chosen) == sorted(spreads[:2])
    validation = read_experiments(synthetic_sweep / "validation" / "experiments.parquet")
    assert set(validation["group"]) == {"synthetic-validation"} and len(validation) == 2

    def refuse(*args: object, **kwargs: object) -> RunResult:
        raise AssertionError("a finished validation run was trained again")

    again = validate_sweep(synthetic_sweep, preset=synthetic_preset, corpus=tiny_corpus, trainer=refuse)
    assert again["laws"][0]["observed"] == chinchilla["observed"]


def test_discovered_laws_come_first_best_first(
    tmp_path: Path, synthetic_sweep: Path, tiny_corpus: TextCorpus, synthetic_preset: Preset
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # Written in N and D, as a discovery run on an (N, D) task would: read as params and tokens.
    (run / "result.json").write_text(json.dumps({"task": "toy", "law": {"expression": "L0 + a/N**p + b/D**p"}}))
    rows = [
        {"expression": "c + d/params", "validation_r2": 0.5, "status": "ok"},
        {"expression": "e + f/tokens**g", "validation_r2": 0.9, "status": "ok"},
        {"expression": "broken(", "validation_r2": None, "status": "rejected"},
        {"expression": "E2 + A2/params**a2 + B2/tokens**b2", "validation_r2": 0.95, "status": "ok"},
    ]
    lines = [json.dumps({"target": "loss", "source": "family", **row}) for row in rows]
    # The last line was cut by a kill: the reader skips it.
    (run / "candidates.jsonl").write_text("\n".join(lines) + '\n{"target": "loss", "expression": "Z + ')
    assert [text for text, _ in discovered_laws(run, top=3)] == [
        "L0 + a/N**p + b/D**p",
        "E2 + A2/params**a2 + B2/tokens**b2",
        "e + f/tokens**g",
    ]

    report = validate_sweep(
        synthetic_sweep, run_dir=run, top=3, preset=synthetic_preset, corpus=tiny_corpus, trainer=FakeTrainer()
    )
    # Candidate 4 is Chinchilla with other constant names: tested once, as the literature law.
    sources = [law["source"] for law in report["laws"]]
    assert sorted(sources) == ["candidates.jsonl#2", "literature: Hoffmann et al. 2022", "result.json"]
    assert sources[0].startswith("literature")
    renamed = next(law for law in report["laws"] if law["source"] == "result.json")
    assert "params" in renamed["expression"] and renamed["abs_rel_error"] is not None


def test_choose_runs_prefers_disagreement_then_cost() -> None:
    model = ModelConfig(n_layer=1, n_head=1, n_embd=8)
    candidates = [(model, TrainConfig(tokens=tokens)) for tokens in (100, 200, 300)]
    predictions = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, np.nan]])
    chosen, spread = choose_runs(candidates, predictions, n_runs=2)
    assert chosen == [1, 0]
    assert spread[2] == 0.0


def test_missing_sweep_folder_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ProxyError, match="not a proxy sweep folder"):
        validate_sweep(tmp_path)
    result = CliRunner().invoke(validate_command, ["--sweep", str(tmp_path)])
    assert result.exit_code != 0


def test_cli_validate_end_to_end_on_smoke(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    sweep = tmp_path / "smoke"
    result = CliRunner().invoke(
        command, ["sweep", "--preset", "smoke", "--out", str(sweep), "--device", "cpu", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "L1-H2-E32-T32-D4096" in result.stdout
    assert len(read_experiments(sweep / "experiments.parquet")) == 4
    out = tmp_path / "validation.json"
    result = CliRunner().invoke(
        validate_command, ["--sweep", str(sweep), "--json", str(out), "--device", "cpu", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"laws", "best_abs_rel_error"}
    assert {"expression", "predicted", "observed", "abs_rel_error"} <= set(report["laws"][0])
    assert any(law["expression"] == str(_chinchilla_text()) for law in report["laws"])
    assert "best abs. relative error" in result.stdout


def _chinchilla_text() -> str:
    from sld.search.expressions import parse_law

    return parse_law(CHINCHILLA, ("params", "tokens")).text


def test_validation_on_other_data_is_refused(tmp_path: Path, synthetic_sweep: Path, synthetic_preset: Preset) -> None:
    other = load_corpus(write_source_tree(tmp_path / "other", n_files=30), val_fraction=0.2)
    with pytest.raises(ProxyError, match="was trained on data"):
        validate_sweep(synthetic_sweep, preset=synthetic_preset, corpus=other, trainer=FakeTrainer())
