import json
from pathlib import Path

import pytest

from sld.benchmark import score_human_task
from sld.search import FitConfig
from sld.tasks import get_task, list_tasks
from sld.tasks.literature import human_law

GOLDEN = json.loads((Path(__file__).parent / "golden" / "human_r2.json").read_text())
ANCHORS = {  # published human-law test R^2 (shared/reference/sldbench_anchors.json), clipped to [-1, 1]
    "data_constrained_scaling_law": 0.9106,
    "domain_mixture_scaling_law": 0.6711,
    "easy_question_scaling_law": -1.0,
    "lr_bsz_scaling_law": -0.0757,
    "moe_scaling_law": 0.7032,
    "parallel_scaling_law": 0.9999,
    "sft_scaling_law": 0.9571,
    "vocab_scaling_law": 0.9664,
}
# Where our fit differs from the published number by more than 0.03, and why (numbers in the note):
# a better optimum of the same law on the train rows (sft, domain_mixture), or a different train split (lr_bsz).
EXPLAINED = {"sft_scaling_law", "domain_mixture_scaling_law", "lr_bsz_scaling_law"}
SLOW = {"sft_scaling_law", "domain_mixture_scaling_law", "lr_bsz_scaling_law"}


def test_every_task_has_a_human_law_within_its_budget():
    for task in list_tasks():
        literature = human_law(task.name)
        assert len(literature.laws) == len(task.targets)
        for law in literature.laws:
            assert law.n_params == task.max_params
            assert law.variables == task.features


def test_published_constants_are_those_of_the_paper():
    constants = human_law("data_constrained_scaling_law").published_constants
    assert constants is not None
    assert constants["alpha"] == constants["beta"] == 0.353
    assert (constants["E"], constants["RN"], constants["RD"]) == (1.87, 5.3, 15.4)


@pytest.mark.parametrize(
    "task_name",
    [pytest.param(t.name, marks=pytest.mark.slow) if t.name in SLOW else t.name for t in list_tasks()],
)
def test_human_law_scores_match_golden_and_published(task_name, shared_sldbench):
    score = score_human_task(task_name, corpus=shared_sldbench, fit_config=FitConfig(**GOLDEN["settings"]))
    golden = GOLDEN["tasks"][task_name]
    assert score.r2 == pytest.approx(golden["r2"], abs=5e-4)
    if "published_constants_r2" in golden:
        assert score.published_constants_r2 == pytest.approx(golden["published_constants_r2"], abs=5e-4)
    if task_name not in EXPLAINED:
        assert max(min(score.r2, 1.0), -1.0) == pytest.approx(ANCHORS[task_name], abs=0.03)


def test_unknown_task_has_no_literature_law():
    with pytest.raises(Exception, match="Unknown task"):
        human_law("no_such_task")
    assert get_task("parallel").name == "parallel_scaling_law"
