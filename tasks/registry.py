"""The 8 SLDBench tasks as data, and generic tasks built from CLI flags.

Example
-------
>>> from sld.tasks import get_task
>>> get_task("parallel_scaling_law").features
('num_params', 'parallel_size')
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import cast, get_args

from sld.tasks.errors import TaskDefinitionError, TaskNotFound
from sld.tasks.task import Task, Trend

TRENDS: tuple[str, ...] = get_args(Trend)

_SLDBENCH_TASKS: tuple[Task, ...] = (
    Task(
        name="parallel_scaling_law",
        features=("num_params", "parallel_size"),
        targets=("loss",),
        max_params=4,
        extrapolation_axis=("parallel_size",),
        monotone={"num_params": "decreasing", "parallel_size": "decreasing"},
        description="Language-model loss as a function of parameter count and the number of parallel streams "
        "(ParScale). Train on P = 1, 2, 4; predict P = 8.",
        citation="Chen et al. 2025, Parallel Scaling Law for Language Models",
        is_sldbench=True,
    ),
    Task(
        name="vocab_scaling_law",
        features=("non_vocab_parameters", "vocab_size", "num_characters"),
        targets=("unigram_normalized_loss",),
        max_params=7,
        extrapolation_axis=("vocab_size",),
        monotone={"non_vocab_parameters": "decreasing", "num_characters": "decreasing"},
        description="Unigram-normalized loss as a function of non-vocabulary parameters, vocabulary size and "
        "training characters; the test rows use a larger vocabulary than any training row.",
        citation="Tao et al. 2024, Scaling Laws with Vocabulary",
        is_sldbench=True,
    ),
    Task(
        name="sft_scaling_law",
        features=("sft_data_size",),
        targets=("sft_loss",),
        max_params=4,
        extrapolation_axis=("sft_data_size",),
        monotone={"sft_data_size": "decreasing"},
        description="Fine-tuning loss of 42 (model, dataset) pairs as a function of fine-tuning examples; "
        "predict at twice the largest training size.",
        citation="Lin et al. 2024, Selecting Large Language Model to Fine-tune via Rectified Scaling Law",
        is_sldbench=True,
    ),
    Task(
        name="domain_mixture_scaling_law",
        features=tuple(f"proportion_domain_{i}" for i in range(1, 6)),
        targets=tuple(f"loss_domain_{i}" for i in range(1, 6)),
        max_params=7,
        extrapolation_axis=(),
        description="Per-domain validation losses of models trained on mixtures of 5 domains, as a function of "
        "the mixture proportions; 4 model sizes; the test rows are unseen mixtures.",
        citation="Ye et al. 2024, Data Mixing Laws",
        is_sldbench=True,
    ),
    Task(
        name="moe_scaling_law",
        features=("num_experts", "dense_parameter_count"),
        targets=("loss_validation",),
        max_params=6,
        extrapolation_axis=("dense_parameter_count",),
        monotone={"num_experts": "decreasing", "dense_parameter_count": "decreasing"},
        description="Validation loss of mixture-of-experts models as a function of expert count and dense "
        "parameters; the test rows have more dense parameters than any training row.",
        citation="Clark et al. 2022, Unified Scaling Laws for Routed Language Models",
        is_sldbench=True,
    ),
    Task(
        name="data_constrained_scaling_law",
        features=("unique_tokens", "params", "tokens"),
        targets=("loss",),
        max_params=7,
        extrapolation_axis=("tokens",),
        monotone={"params": "decreasing"},
        description="Loss under repeated data: unique tokens, parameters and total training tokens; the test "
        "rows train on more tokens.",
        citation="Muennighoff et al. 2023, Scaling Data-Constrained Language Models",
        is_sldbench=True,
    ),
    Task(
        name="lr_bsz_scaling_law",
        features=("lr", "bsz", "data_size", "non_embedding_param_size"),
        targets=("lm_loss",),
        # SLDBench sets no official budget for this task; 12 is the Step Law-style reference's count.
        max_params=12,
        # The test rows are the largest model trained on the most tokens: beyond the training rows in N * D.
        extrapolation_axis=("non_embedding_param_size", "data_size"),
        # Loss is U-shaped in the learning rate and in the batch size (Li et al. 2025; McCandlish et al. 2018).
        optima=("lr", "bsz"),
        description="Final loss of dense models as a function of learning rate, batch size, training tokens and "
        "non-embedding parameters; the test rows are the largest model trained longest.",
        citation="Li et al. 2025, Predictable Scale (Step Law)",
        is_sldbench=True,
    ),
    Task(
        name="easy_question_scaling_law",
        features=("log_flops",),
        targets=("brier_score",),
        max_params=6,
        extrapolation_axis=("log_flops",),
        extra_columns=("flops", "model_name"),
        description="Negative Brier score on easy multiple-choice questions (9 benchmarks) as a function of log "
        "training compute; shows U-shaped and emergent behaviour; predict larger compute.",
        citation="Wu and Lo 2024, U-shaped and Inverted-U Scaling behind Emergent Abilities",
        is_sldbench=True,
    ),
)

# The embedded default: proxy GPTs that sld trained itself on CPU (corpus/embedded/README.md).
EMBEDDED_TASK = Task(
    name="proxy_scaling_law",
    features=("params", "tokens"),
    targets=("loss",),
    max_params=5,
    extrapolation_axis=("tokens",),
    monotone={"tokens": "decreasing"},
    description="Validation loss (nats per byte) of byte-level GPTs trained on the Python standard library, as a "
    "function of non-embedding parameters and training tokens; predict the largest token budget.",
    citation="sld's own cpu-tiny proxy sweep (corpus/embedded/README.md)",
)

_BY_NAME = {task.name: task for task in (*_SLDBENCH_TASKS, EMBEDDED_TASK)}


def list_tasks(*, include_embedded: bool = False) -> list[Task]:
    """Return the SLDBench tasks in a stable order, and the embedded default task if asked."""
    return [*_SLDBENCH_TASKS, EMBEDDED_TASK] if include_embedded else list(_SLDBENCH_TASKS)


def get_task(name: str) -> Task:
    """Return the task called ``name``.

    Parameters
    ----------
    name : str
        A task name such as ``"vocab_scaling_law"``; a unique prefix such as ``"vocab"`` is accepted too.

    Raises
    ------
    TaskNotFound
        With the known names and the closest one.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    prefixed = [known for known in _BY_NAME if known.startswith(name)] if name else []
    if len(prefixed) == 1:
        return _BY_NAME[prefixed[0]]
    known = ", ".join(_BY_NAME)
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.3) or prefixed[:1]
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise TaskNotFound(f"Unknown task '{name}'. Known: {known}.{hint}")


def generic_task(
    *,
    name: str,
    features: Sequence[str],
    targets: Sequence[str],
    group: str | None = None,
    max_params: int = 6,
    extrapolation_axis: str | Sequence[str] | None = None,
    monotone: Mapping[str, Trend] | None = None,
    optima: Sequence[str] = (),
) -> Task:
    """Build a task for user data from CLI flags (``--features a,b --target y [--group g]``).

    Parameters
    ----------
    name : str
        Usually the data file's stem.
    features, targets : sequence of str
        Column names; at least one each, no name in both.
    group : str, optional
        Column with one set of constants per value; ``None`` fits all rows as one group.
    max_params : int
        Constant budget per group and target.
    extrapolation_axis : str or sequence of str, optional
        Feature(s) to order validation folds by; several order rows by their product (``N,D``: by N * D, as
        compute does), as the SLDBench tasks' axes do (``scale_order`` in ``sld.tasks.problems``). Defaults to the
        first feature.
    monotone : mapping of str to {"increasing", "decreasing"}, optional
        Trend of the target(s) in a feature that the user knows (see ``parse_monotone``).
    optima : sequence of str, default ()
        Features in which the target has an interior optimum (a learning rate, a batch size).

    Raises
    ------
    TaskDefinitionError
        When a list is empty, a name repeats, the axis, a trend or an optimum names no feature, or a feature is
        declared both monotone and an optimum.

    Examples
    --------
    >>> task = generic_task(name="runs", features=["N", "D", "lr"], targets=["loss"], extrapolation_axis="N,D",
    ...                     monotone={"N": "decreasing"}, optima=["lr"])
    >>> task.extrapolation_axis, task.optima
    (('N', 'D'), ('lr',))
    """
    features, targets = tuple(features), tuple(targets)
    if not features:
        raise TaskDefinitionError("No features given. Pass them with --features a,b.")
    if not targets:
        raise TaskDefinitionError("No target given. Pass it with --target y.")
    both = sorted(set(features) & set(targets))
    if both:
        raise TaskDefinitionError(f"Column(s) {', '.join(both)} are both features and targets; drop one.")
    if max_params < 1:
        raise TaskDefinitionError(f"--max-params {max_params} must be at least 1.")
    if isinstance(extrapolation_axis, str):
        extrapolation_axis = [part.strip() for part in extrapolation_axis.split(",") if part.strip()]
    axis = tuple(extrapolation_axis or features[:1])
    _check_named(axis, features, flag="--axis", what="Extrapolation axis")
    if len(set(axis)) < len(axis):
        raise TaskDefinitionError(f"--axis {','.join(axis)} names a feature twice; name each once.")
    trends = dict(monotone or {})
    _check_named(tuple(trends), features, flag="--monotone", what="Trend feature")
    optima = tuple(optima)
    _check_named(optima, features, flag="--optimum", what="Optimum feature")
    clash = sorted(set(trends) & set(optima))
    if clash:
        raise TaskDefinitionError(
            f"Feature '{clash[0]}' is declared both monotone (--monotone) and with an optimum (--optimum); "
            "a U-shaped target is not monotone, so drop one of the two."
        )
    return Task(
        name=name,
        features=features,
        targets=targets,
        group_column=group or "group",
        max_params=max_params,
        extrapolation_axis=axis,
        monotone=trends,
        optima=optima,
        description=f"User data: {', '.join(targets)} as a function of {', '.join(features)}.",
    )


def _check_named(names: Sequence[str], features: Sequence[str], *, flag: str, what: str) -> None:
    """Raise when one of ``names`` is not a feature, naming the flag, the value and the valid choices."""
    for feature in names:
        if feature not in features:
            close = difflib.get_close_matches(feature, list(features), n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise TaskDefinitionError(
                f"{what} '{feature}' ({flag}) is not a feature; pick one of: {', '.join(features)}.{hint}"
            )


def parse_monotone(values: Sequence[str], *, features: Sequence[str], targets: Sequence[str]) -> dict[str, Trend]:
    """Parse ``--monotone`` values (``loss:N=decreasing`` or ``N=decreasing``) into a trend per feature.

    Parameters
    ----------
    values : sequence of str
        Each ``[TARGET:]FEATURE=TREND``; TREND is ``increasing`` or ``decreasing``.
    features, targets : sequence of str
        The task's columns, to check the names against.

    Returns
    -------
    dict of str to {"increasing", "decreasing"}
        A task's trends hold for every target (``Task.monotone``), so a trend naming one target of several
        must be declared, alike, for every target.

    Raises
    ------
    TaskDefinitionError
        A value that does not parse, an unknown target, feature or trend, or conflicting trends.

    Examples
    --------
    >>> parse_monotone(["loss:N=decreasing", "D=decreasing"], features=["N", "D"], targets=["loss"])
    {'N': 'decreasing', 'D': 'decreasing'}
    """
    trends: dict[str, Trend] = {}
    named: dict[str, set[str]] = {}
    for value in values:
        left, sep, trend = value.partition("=")
        target, colon, feature = left.rpartition(":")
        feature, trend, target = feature.strip(), trend.strip(), target.strip()
        if not sep or not feature or (colon and not target):
            raise TaskDefinitionError(
                f"--monotone {value!r} does not parse; write TARGET:FEATURE=TREND, e.g. "
                f"{targets[0] if targets else 'loss'}:{features[0] if features else 'N'}=decreasing."
            )
        if trend not in TRENDS:
            raise TaskDefinitionError(
                f"--monotone {value!r}: trend {trend!r} is not one of {', '.join(TRENDS)}."
            )
        if target and target not in targets:
            raise TaskDefinitionError(
                f"--monotone {value!r}: target {target!r} is not a target; pick one of: {', '.join(targets)}."
            )
        _check_named((feature,), features, flag="--monotone", what="Trend feature")
        if trends.get(feature, trend) != trend:
            raise TaskDefinitionError(
                f"--monotone declares {feature} both {trends[feature]} and {trend}; keep one."
            )
        trends[feature] = cast(Trend, trend)
        named.setdefault(feature, set()).update([target] if target else targets)
    for feature, covered in named.items():
        missing = [target for target in targets if target not in covered]
        if missing:
            raise TaskDefinitionError(
                f"--monotone declares the trend in {feature} for {', '.join(sorted(covered))} only; a trend holds "
                f"for every target here, so declare it for {', '.join(missing)} too, or write {feature}="
                f"{trends[feature]} for all."
            )
    return trends
