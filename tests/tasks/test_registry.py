import pytest

from sld.tasks import TaskDefinitionError, TaskNotFound, generic_task, get_task, list_tasks
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
