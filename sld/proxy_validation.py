"""Test laws where they have not been fitted: pre-register predictions for larger proxy runs, then train them.

    sld validate --sweep runs/cpu-tiny --run runs/discover --json validation.json

The laws (the top ones of a discovery run, or Chinchilla and two variants, always with the Chinchilla-form
literature law) are fitted on a sweep's runs. Each predicts the loss of the preset's candidate runs beyond
the grid; the runs where the laws disagree most are chosen, since they best tell the laws apart. The fitted
constants and predictions are written to ``SWEEP/validation/predictions-<UTC time>.json`` *before* those
runs are trained, then the runs are trained (resumably, into ``SWEEP/validation/experiments.parquet``) and
each law's mean absolute relative error is reported.

This module sits in ``sld`` (not ``sld.corpus``) because it fits laws with ``sld.search``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sld.corpus.proxy.config import Device, run_key
from sld.corpus.proxy.data import TextCorpus, load_corpus
from sld.corpus.proxy.errors import ProxyError
from sld.corpus.proxy.presets import Preset, Run, get_preset
from sld.corpus.proxy.sweep import (
    EXPERIMENTS_FILE,
    FEATURES,
    TARGET,
    Mapper,
    map_in_process,
    read_experiments,
    read_manifest,
    train_runs,
)
from sld.corpus.proxy.train import Trainer, train_run
from sld.search.errors import ExpressionError
from sld.search.expressions import ConstantSpec, Law, parse_law
from sld.search.fitting import FitConfig, fit_law
from sld.search.scoring import finite_or_none

VALIDATION_DIR = "validation"
# Hoffmann et al. 2022 (Chinchilla), Eq. 2, in the sweep's column names (params = N, tokens = D).
CHINCHILLA = "E + A/params**alpha + B/tokens**beta"
DEFAULT_LAWS = (
    CHINCHILLA,
    # Kaplan et al. 2020, Eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, with an offset E.
    "E + (A/params**(alpha/beta) + B/tokens)**beta",
    # A log-linear fit: the simplest law that still falls with N and D, and extrapolates differently.
    "a - b*log(params) - c*log(tokens)",
)
# Bounds of the literature laws' constants: loss floor and exponents in plausible ranges, coefficients > 0.
_BOUNDS = {
    "E": ConstantSpec("E", 0.0, 10.0, 1.0),
    "A": ConstantSpec("A", 0.0, 1e8, 10.0),
    "B": ConstantSpec("B", 0.0, 1e8, 10.0),
    "alpha": ConstantSpec("alpha", 0.0, 3.0, 0.3),
    "beta": ConstantSpec("beta", 0.0, 3.0, 0.3),
}
Log = Callable[[str], None]


@dataclass(frozen=True)
class FittedLaw:
    """A law, where it came from, and its constants fitted on the sweep (``None`` when the fit failed)."""

    law: Law
    source: str
    theta: NDArray[np.float64] | None
    message: str

    @property
    def constants(self) -> dict[str, float]:
        """Fitted constants by name (empty when the fit failed)."""
        if self.theta is None:
            return {}
        return {spec.name: float(value) for spec, value in zip(self.law.constants, self.theta, strict=True)}

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """Predict the loss at ``X`` (n, 2) of ``(params, tokens)``; NaN where the fit failed."""
        if self.theta is None:
            return np.full(len(X), np.nan)
        return np.asarray(self.law.predict(X, self.theta), dtype=np.float64)


def _parse(text: str) -> Law:
    """Parse a law over (params, tokens); a law written in N and D is read with N = params, D = tokens."""
    names = set(re.findall(r"[A-Za-z_]\w*", text))
    if not names & set(FEATURES) and {"N", "D"} <= names:
        text = re.sub(r"\bN\b", "params", re.sub(r"\bD\b", "tokens", text))
    constants = {name: spec for name, spec in _BOUNDS.items() if name in names}
    return parse_law(text, FEATURES, constants=constants)


def discovered_laws(run_dir: str | Path, *, top: int) -> list[tuple[str, str]]:
    """Return up to ``top`` ``(expression, source)`` pairs from a discovery run folder, best first.

    The chosen law of ``result.json`` comes first, then the candidates of ``candidates.jsonl`` with the
    highest finite ``validation_r2``, without repeats.

    Raises
    ------
    ProxyError
        When the folder has neither file.

    """
    from sld.agent.errors import AgentError
    from sld.agent.rundir import RunDirectory

    run = RunDirectory(Path(run_dir), create=False) if Path(run_dir).is_dir() else None
    if run is None or (not run.result_path.exists() and not run.candidates_path.exists()):
        raise ProxyError(f"{run_dir} has no result.json or candidates.jsonl; pass a `sld discover --run-dir` folder")
    found: list[tuple[str, str]] = []
    if run.result_path.exists():
        try:
            expression = run.read_result().law.get("expression")
        except AgentError as exc:
            raise ProxyError(str(exc)) from exc
        if expression:
            found.append((str(expression), run.result_path.name))
    # Candidates are named by their line in the log (1-based): the log has no other identifier.
    scored = [
        (number, line)
        for number, line in enumerate(run.read_candidates(), start=1)
        if line.validation_r2 is not None and math.isfinite(line.validation_r2)
    ]
    for number, line in sorted(scored, key=lambda item: -(item[1].validation_r2 or 0.0)):
        found.append((line.expression, f"{run.candidates_path.name}#{number}"))
    unique: dict[str, str] = {}
    for expression, source in found:
        unique.setdefault(expression, source)
    return list(unique.items())[:top]


def fit_laws(
    expressions: Sequence[tuple[str, str]],
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    log: Log | None = None,
) -> list[FittedLaw]:
    """Parse and fit each ``(expression, source)`` on ``X`` (n, 2) and ``y`` (n,).

    A law equal to an earlier one up to the names of its constants is tested once (the first source is
    kept); one that does not parse is skipped with a log message; a failed fit is kept, without constants.
    """
    fitted: list[FittedLaw] = []
    seen: set[str] = set()
    for expression, source in expressions:
        try:
            law = _parse(expression)
        except ExpressionError as exc:
            if log is not None:
                log(f"skipping {expression!r} ({source}): {exc}")
            continue
        if law.canonical_key in seen:
            continue
        seen.add(law.canonical_key)
        fit = fit_law(law, X, y, config=FitConfig(n_starts=24, seed=0))
        ok = fit.success and fit.params is not None and np.all(np.isfinite(law.predict(X, fit.params)))
        fitted.append(FittedLaw(law, source, fit.params if ok else None, fit.message))
    return fitted


def choose_runs(
    candidates: Sequence[Run], predictions: NDArray[np.float64], *, n_runs: int
) -> tuple[list[int], NDArray[np.float64]]:
    """Pick the ``n_runs`` candidates where the laws' predictions disagree most.

    Parameters
    ----------
    candidates : sequence of (ModelConfig, TrainConfig)
        Candidate runs, m of them.
    predictions : ndarray of shape (n_laws, m)
        Each law's predicted loss per candidate (NaN where a law failed).
    n_runs : int
        How many to pick.

    Returns
    -------
    chosen : list of int
        Indices into ``candidates``, most separating first; ties go to the cheaper run.
    spread : ndarray of shape (m,)
        Disagreement per candidate: (max - min) / mean of the finite predictions (0 with fewer than two).

    """
    spread = np.zeros(len(candidates))
    for j in range(len(candidates)):
        column = predictions[:, j][np.isfinite(predictions[:, j])]
        if len(column) >= 2 and abs(column.mean()) > 0:
            spread[j] = (column.max() - column.min()) / abs(column.mean())
    cost = [model.non_embedding_params * train.tokens for model, train in candidates]
    order = sorted(range(len(candidates)), key=lambda j: (-spread[j], cost[j]))
    return order[:n_runs], spread


def _features(runs: Sequence[Run]) -> NDArray[np.float64]:
    return np.array(
        [
            [model.non_embedding_params, train.steps(model.block_size) * train.batch_size * model.block_size]
            for model, train in runs
        ],
        dtype=np.float64,
    )


def validate_sweep(
    sweep_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    top: int = 3,
    n_runs: int | None = None,
    device: Device = "auto",
    preset: Preset | None = None,
    corpus: TextCorpus | None = None,
    trainer: Trainer = train_run,
    log: Log | None = None,
    mapper: Mapper = map_in_process,
) -> dict[str, Any]:
    """Fit laws on a sweep, pre-register their predictions for larger runs, train those, score the laws.

    Parameters
    ----------
    sweep_dir : str or Path
        A folder written by :func:`sld.corpus.proxy.sweep.run_sweep`.
    run_dir : str or Path, optional
        A discovery run folder whose ``top`` laws to test; without it, :data:`DEFAULT_LAWS`.
        The Chinchilla law is always tested.
    top : int, default 3
        How many discovered laws to take from ``run_dir``.
    n_runs : int, optional
        Validation runs to train; default the preset's ``n_validation``.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train.
    preset : Preset, optional
        Defaults to the preset named in the sweep's ``sweep.json``.
    corpus : TextCorpus, optional
        Defaults to the standard library's source.
    trainer : callable, default :func:`~sld.corpus.proxy.train.train_run`
        Trains one run; tests inject a fake.
    log : callable, optional
        Receives one-line progress messages.
    mapper : Mapper, default :func:`~sld.corpus.proxy.sweep.map_in_process`
        Where the validation runs train (e.g. one Ray task each; see ``sld.cluster.ray_mapper``).

    Returns
    -------
    dict
        ``{"laws": [{"expression", "source", "constants", "predicted", "observed", "abs_rel_error"}],
        "best_abs_rel_error", "runs": [...], "predictions_file", "sweep"}``; ``predicted`` and ``observed``
        are lists over the validation runs, ``abs_rel_error`` their mean ``|predicted - observed| / observed``
        (``null`` for a law whose fit failed). Laws are sorted by error, best first.

    Raises
    ------
    ProxyError
        When the sweep folder is not one, or no law could be fitted.

    """
    say = log or (lambda _message: None)
    sweep = Path(sweep_dir)
    manifest = read_manifest(sweep)
    preset = get_preset(manifest["preset"]) if preset is None else preset
    corpus = load_corpus() if corpus is None else corpus
    swept_on = manifest.get("data", {}).get("sha256")
    if swept_on != corpus.sha256:
        raise ProxyError(
            f"{sweep} was trained on data {swept_on}, but this Python's standard library hashes to "
            f"{corpus.sha256}; validate with the Python version that ran the sweep"
        )
    table = read_experiments(sweep / EXPERIMENTS_FILE)
    X = table[list(FEATURES)].to_numpy(dtype=np.float64)
    y = table[TARGET].to_numpy(dtype=np.float64)

    expressions = [(CHINCHILLA, "literature: Hoffmann et al. 2022")]
    if run_dir is not None:
        expressions += discovered_laws(run_dir, top=top)
    else:
        expressions += [(text, "default") for text in DEFAULT_LAWS[1:]]
    say(f"fitting {len(expressions)} laws on {len(table)} runs of {sweep}")
    laws = fit_laws(expressions, X, y, log=say)
    if all(law.theta is None for law in laws):
        raise ProxyError(f"no law could be fitted on {sweep}: {'; '.join(law.message for law in laws)}")

    candidates = preset.validation_runs()
    if not candidates:
        raise ProxyError(f"preset {preset.name!r} lists no validation runs beyond its grid")
    X_new = _features(candidates)
    predictions = np.array([law.predict(X_new) for law in laws])
    chosen, spread = choose_runs(candidates, predictions, n_runs=n_runs or preset.n_validation)

    results_path = sweep / VALIDATION_DIR / EXPERIMENTS_FILE
    already = set(read_experiments(results_path)["run_id"]) if results_path.exists() else set()
    predictions_path = _preregister(
        sweep, laws, candidates, predictions, spread=spread, chosen=chosen, already=already, n_fitted=len(table)
    )
    say(f"pre-registered predictions in {predictions_path}")

    runs = [candidates[j] for j in chosen]
    trained = train_runs(
        runs,
        results_path,
        group=f"{preset.name}-validation",
        corpus=corpus,
        device=device,
        trainer=trainer,
        log=say,
        mapper=mapper,
    )
    observed_by_id = dict(zip(trained["run_id"], trained[TARGET].astype(float), strict=True))
    observed = np.array([observed_by_id[run_key(model, train)] for model, train in runs])
    return _report(laws, predictions[:, chosen], observed, runs, X_new[chosen], predictions_path, sweep)


def _preregister(
    sweep: Path,
    laws: Sequence[FittedLaw],
    candidates: Sequence[Run],
    predictions: NDArray[np.float64],
    *,
    spread: NDArray[np.float64],
    chosen: Sequence[int],
    already: set[str],
    n_fitted: int,
) -> Path:
    """Write the fitted laws and their predictions for every candidate, before any is trained."""
    created = datetime.now(UTC)
    X_new = _features(candidates)
    registered = {
        "created_at": created.isoformat(timespec="seconds"),
        "sweep": str(sweep),
        "fitted_on": {"runs": n_fitted, "features": list(FEATURES), "target": TARGET},
        "laws": [
            {"expression": law.law.text, "source": law.source, "constants": law.constants, "fit": law.message}
            for law in laws
        ],
        "candidates": [
            {
                "run_id": run_key(model, train),
                "params": float(X_new[j, 0]),
                "tokens": float(X_new[j, 1]),
                "spread": float(spread[j]),
                "chosen": j in chosen,
                "already_trained": run_key(model, train) in already,
                "predicted": [finite_or_none(value) for value in predictions[:, j]],
            }
            for j, (model, train) in enumerate(candidates)
        ],
    }
    out = sweep / VALIDATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"predictions-{created.strftime('%Y%m%dT%H%M%SZ')}"
    path, n = out / f"{stem}.json", 1
    while path.exists():  # never overwrite an earlier registration made within the same second
        path, n = out / f"{stem}-{n}.json", n + 1
    path.write_text(json.dumps(registered, indent=2) + "\n")
    return path


def _report(
    laws: Sequence[FittedLaw],
    predicted: NDArray[np.float64],
    observed: NDArray[np.float64],
    runs: Sequence[Run],
    X: NDArray[np.float64],
    predictions_path: Path,
    sweep: Path,
) -> dict[str, Any]:
    scored: list[tuple[float, dict[str, Any]]] = []
    for law, row in zip(laws, predicted, strict=True):
        finite = bool(np.all(np.isfinite(row)))
        error = float(np.mean(np.abs(row - observed) / observed)) if finite else None
        scored.append(
            (
                math.inf if error is None else error,
                {
                    "expression": law.law.text,
                    "source": law.source,
                    "constants": law.constants,
                    "predicted": [finite_or_none(value) for value in row],
                    "observed": [float(value) for value in observed],
                    "abs_rel_error": error,
                },
            ),
        )
    scored.sort(key=lambda pair: pair[0])  # stable: equal errors keep the order of the laws
    best = scored[0][0] if scored and math.isfinite(scored[0][0]) else None
    return {
        "laws": [entry for _, entry in scored],
        "best_abs_rel_error": best,
        "runs": [
            {
                "run_id": run_key(model, train),
                "params": float(x[0]),
                "tokens": float(x[1]),
                "loss": float(obs),
            }
            for (model, train), x, obs in zip(runs, X, observed, strict=True)
        ],
        "predictions_file": str(predictions_path),
        "sweep": str(sweep),
    }
