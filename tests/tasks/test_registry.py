import pytest

from sld.tasks import TaskDefinitionError, TaskNotFound, generic_task, get_task, list_tasks, parse_monotone
from sld.tasks.task import Task

BUDGETS = {
    "parallel_scaling_law": 4,
    "vocab_scaling_law": 7,
    "sft_scaling_law": 4,
    "domain_mixture_scaling_law": 7,
    "moe_scaling_law": 6,
    "data_constrained_scaling_law": 7,
    "lr_bsz_scaling_law": 12,
    "easy_question_scaling_law": 6,
}


def test_eight_sldbench_tasks_with_official_budgets():
    assert {task.name: task.max_params for task in list_tasks()} == BUDGETS


def test_features_in_official_order():
    assert get_task("vocab_scaling_law").features == ("non_vocab_parameters", "vocab_size", "num_characters")
    assert get_task("lr_bsz_scaling_law").features == ("lr", "bsz", "data_size", "non_embedding_param_size")
    assert get_task("domain_mixture_scaling_law").targets == tuple(f"loss_domain_{i}" for i in range(1, 6))


def test_axis_features_are_features():
    for task in list_tasks():
        assert set(task.extrapolation_axis) <= set(task.features)
        assert set(task.monotone) <= set(task.features)


def test_unique_prefix_resolves():
    assert get_task("sft").name == "sft_scaling_law"


def test_unknown_task_lists_known_and_suggests():
    with pytest.raises(TaskNotFound) as info:
        get_task("vocab_scalinglaw")
    message = str(info.value)
    assert "Unknown task 'vocab_scalinglaw'" in message
    assert "Did you mean 'vocab_scaling_law'?" in message
    assert "parallel_scaling_law" in message


def test_generic_task_defaults_axis_to_first_feature():
    task = generic_task(name="mine", features=["N", "D"], targets=["loss"], group="g", max_params=5)
    assert task.extrapolation_axis == ("N",)
    assert task.group_column == "g"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"features": [], "targets": ["y"]}, "--features"),
        ({"features": ["x"], "targets": []}, "--target"),
        ({"features": ["x"], "targets": ["x"]}, "both features and targets"),
        ({"features": ["x"], "targets": ["y"], "max_params": 0}, "--max-params"),
        ({"features": ["x"], "targets": ["y"], "extrapolation_axis": "z"}, "not a feature"),
    ],
)
def test_generic_task_bad_definitions(kwargs, fragment):
    with pytest.raises(TaskDefinitionError, match=fragment):
        generic_task(name="mine", **kwargs)


def test_lr_bsz_declares_its_hyperparameter_optima():
    assert get_task("lr_bsz_scaling_law").optima == ("lr", "bsz")


@pytest.mark.parametrize(
    ("field", "value"), [("optima", ("lr",)), ("monotone", {"lr": "decreasing"}), ("extrapolation_axis", ("lr",))]
)
def test_task_fields_must_name_features(field, value):
    with pytest.raises(ValueError, match=f"{field} names lr"):
        Task(name="t", features=("N",), targets=("y",), max_params=3, **{field: value})


def test_generic_task_orders_by_several_axis_features_like_the_tasks_do():
    import numpy as np

    from sld.tasks.problems import scale_order

    task = generic_task(name="mine", features=["N", "D", "lr"], targets=["loss"], extrapolation_axis="N, D")
    assert task.extrapolation_axis == ("N", "D")
    X = np.array([[1e8, 1e9, 1e-3], [1e7, 1e11, 1e-3], [1e9, 1e9, 1e-2]])
    # By N * D: 1e17, 1e18, 1e18 (ties keep their positions under a stable sort).
    assert list(np.argsort(scale_order(task, X), kind="stable")) == [0, 1, 2]


def test_generic_task_declares_trends_and_optima():
    task = generic_task(name="mine", features=["N", "lr"], targets=["loss"],
                        monotone=parse_monotone(["loss:N=decreasing"], features=["N", "lr"], targets=["loss"]),
                        optima=["lr"])
    assert task.monotone == {"N": "decreasing"} and task.optima == ("lr",)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"extrapolation_axis": "N,Q"}, r"Extrapolation axis 'Q' \(--axis\) is not a feature; pick one of: N, D, lr"),
        ({"extrapolation_axis": "N,N"}, "names a feature twice"),
        ({"optima": ["lrr"]}, r"Optimum feature 'lrr' \(--optimum\) is not a feature; .* Did you mean 'lr'\?"),
        ({"monotone": {"lr": "decreasing"}, "optima": ["lr"]}, "both monotone .* and with an optimum"),
    ],
)
def test_generic_task_names_the_bad_axis_trend_or_optimum(kwargs, fragment):
    with pytest.raises(TaskDefinitionError, match=fragment):
        generic_task(name="mine", features=["N", "D", "lr"], targets=["loss"], **kwargs)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["N:decreasing"], "does not parse; write TARGET:FEATURE=TREND, e.g. loss:N=decreasing"),
        (["loss:N=down"], "trend 'down' is not one of increasing, decreasing"),
        (["acc:N=decreasing"], "target 'acc' is not a target; pick one of: loss, err"),
        (["loss:Q=decreasing"], "Trend feature 'Q' .* pick one of: N, D"),
        (["N=decreasing", "err:N=increasing"], "both decreasing and increasing"),
        (["loss:N=decreasing"], "for loss only; .* declare it for err too"),
    ],
)
def test_parse_monotone_names_the_bad_value_and_the_choices(values, fragment):
    with pytest.raises(TaskDefinitionError, match=fragment):
        parse_monotone(values, features=["N", "D"], targets=["loss", "err"])


def test_parse_monotone_without_a_target_holds_for_all():
    trends = parse_monotone(["N=decreasing", "loss:D=increasing", "err:D=increasing"], features=["N", "D"],
                            targets=["loss", "err"])
    assert trends == {"N": "decreasing", "D": "increasing"}
