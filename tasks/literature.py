"""The human-derived law of each SLDBench task (and of the embedded default), written over the task's features.

Each law is the published form; where a published constant spans many orders of magnitude it is fitted through
its logarithm (``A = exp(a)``), which is the same law and lets a bounded least-squares fit reach it.

Example
-------
>>> from sld.tasks.literature import human_law
>>> human_law("sft_scaling_law").laws[0].n_params
4
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sld.search import ConstantSpec, Law, parse_law
from sld.tasks.errors import TaskNotFound
from sld.tasks.registry import get_task

_Bounds = Mapping[str, tuple[float, float, float]]  # name -> (lower, upper, initial value)


@dataclass(frozen=True)
class LiteratureLaw:
    """A published law for a task: one ``Law`` per target, fitted per group like any candidate.

    Attributes
    ----------
    task : str
        Task name.
    citation : str
        Paper the form comes from.
    laws : tuple of Law
        One per target, in the task's target order.
    published_constants : dict, optional
        Constants as printed in the paper (one set for every group), scored as they are beside the refit.
    """

    task: str
    citation: str
    laws: tuple[Law, ...]
    published_constants: Mapping[str, float] | None = field(default=None)


def _law(text: str, bounds: _Bounds, variables: tuple[str, ...]) -> Law:
    specs = {name: ConstantSpec(name, lower, upper, init) for name, (lower, upper, init) in bounds.items()}
    return parse_law(text, variables, constants=specs)


def _parallel() -> tuple[str, _Bounds]:
    # Chen et al. 2025: L = (A / (N (k ln P + 1)))^alpha + E, with A = exp(a).
    text = "exp(alpha * (a - log(num_params * (k * log(parallel_size) + 1)))) + E"
    return text, {"a": (0.0, 60.0, 20.0), "k": (0.0, 10.0, 0.3), "alpha": (0.01, 2.0, 0.2), "E": (0.0, 5.0, 1.0)}


def _vocab() -> tuple[str, _Bounds]:
    # Tao et al. 2024: L = A/N^alpha + B/V^beta + C/D^gamma + E.
    text = "A / non_vocab_parameters**alpha + B / vocab_size**beta + C / num_characters**gamma + E"
    return text, {
        "A": (-1e4, 1e4, 10.0),
        "alpha": (0.0, 2.0, 0.3),
        "B": (-1e4, 1e4, 1.0),
        "beta": (0.0, 2.0, 0.3),
        "C": (-1e5, 1e5, 100.0),
        "gamma": (0.0, 2.0, 0.3),
        "E": (-20.0, 20.0, -5.0),
    }


def _sft() -> tuple[str, _Bounds]:
    # Lin et al. 2024, rectified scaling law: L(D) = A / (D^alpha + B) + C.
    text = "A / (sft_data_size**alpha + B) + C"
    return text, {"A": (0.0, 1e4, 10.0), "alpha": (0.0, 2.0, 0.4), "B": (0.0, 1e4, 10.0), "C": (0.0, 10.0, 0.5)}


def _domain_mixture(target_index: int) -> tuple[str, _Bounds]:
    # Ye et al. 2024, data mixing law: L_i(r) = c_i + k_i exp(sum_j t_ij r_j).
    mix = " + ".join(f"t{j} * proportion_domain_{j}" for j in range(1, 6))
    text = f"c + k * exp({mix})"
    bounds: dict[str, tuple[float, float, float]] = {"c": (-10.0, 10.0, 1.0), "k": (-10.0, 10.0, 1.0)}
    bounds.update({f"t{j}": (-20.0, 20.0, -1.0 if j == target_index else 0.0) for j in range(1, 6)})
    return text, bounds


def _moe() -> tuple[str, _Bounds]:
    # Clark et al. 2022: log L = a log N + b log Ehat + c log N log Ehat + d, with the saturating expert count
    # 1/Ehat = 1/(E - 1 + (1/(E_start - 1) - 1/E_max)^-1) + 1/E_max.
    e_hat = "1 / (1 / (num_experts - 1 + 1 / (1 / (E_start - 1) - 1 / E_max)) + 1 / E_max)"
    text = f"exp(a * log(dense_parameter_count) + b * log({e_hat}) + c * log(dense_parameter_count) * log({e_hat}) + d)"
    return text, {
        "a": (-1.0, 1.0, -0.05),
        "b": (-2.0, 2.0, -0.05),
        "c": (-1.0, 1.0, 0.0),
        "d": (-10.0, 10.0, 2.0),
        "E_start": (1.01, 50.0, 2.0),
        "E_max": (60.0, 1e5, 500.0),
    }


def _data_constrained() -> tuple[str, _Bounds]:
    # Muennighoff et al. 2023 with U_N = min(0.051 U, N) as in the benchmark's reference; repeated-data decay
    # constants R_N*, R_D* (called RN, RD here).
    u_n = "Min(0.051 * unique_tokens, params)"
    r_n = f"Max(params / {u_n} - 1, 0)"
    r_d = "(tokens / unique_tokens - 1)"
    n_eff = f"({u_n} + RN * {u_n} * (1 - exp(-{r_n} / RN)))"
    d_eff = f"(unique_tokens + RD * unique_tokens * (1 - exp(-{r_d} / RD)))"
    text = f"E + exp(a) / {n_eff}**alpha + exp(b) / {d_eff}**beta"
    return text, {
        "E": (0.0, 10.0, 1.87),
        "a": (-5.0, 30.0, math.log(521.0)),
        "alpha": (0.01, 2.0, 0.353),
        "b": (-5.0, 30.0, math.log(1488.0)),
        "beta": (0.01, 2.0, 0.353),
        "RN": (0.1, 1e3, 5.3),
        "RD": (0.1, 1e3, 15.4),
    }


DATA_CONSTRAINED_PUBLISHED = {
    "E": 1.87,
    "a": math.log(521.0),
    "alpha": 0.353,
    "b": math.log(1488.0),
    "beta": 0.353,
    "RN": 5.3,
    "RD": 15.4,
}


def _lr_bsz() -> tuple[str, _Bounds]:
    # Step Law-style: L = A D^-alpha + B N^-beta + C + F (lr - lr0)^2 + G (ln bsz + b0/bsz),
    # lr0 = H N^gamma D^zeta, b0 = J D^eta. H and J through their logs (h, j) so the fit can reach them.
    lr0 = "exp(h) * non_embedding_param_size**gamma * data_size**zeta"
    b0 = "exp(j) * data_size**eta"
    text = (
        "exp(a) * data_size**(-alpha) + exp(b) * non_embedding_param_size**(-beta) + C"
        f" + F * (lr - {lr0})**2 + G * (log(bsz) + {b0} / bsz)"
    )
    return text, {
        "a": (-10.0, 40.0, 5.0),
        "alpha": (0.0, 2.0, 0.3),
        "b": (-10.0, 40.0, 5.0),
        "beta": (0.0, 2.0, 0.3),
        "C": (0.0, 10.0, 1.5),
        "F": (0.0, 1e6, 1e3),
        "G": (0.0, 1.0, 0.01),
        "h": (-30.0, 20.0, -3.0),
        "gamma": (-2.0, 2.0, -0.3),
        "zeta": (-2.0, 2.0, 0.1),
        "j": (-30.0, 30.0, 0.0),
        "eta": (-2.0, 2.0, 0.3),
    }


def _easy_question() -> tuple[str, _Bounds]:
    # The benchmark's reference for this task: a degree-5 polynomial in log_flops per group.
    text = " + ".join(f"c{k} * log_flops**{k}" if k else "c0" for k in range(6))
    return text, {f"c{k}": (-1e3, 1e3, 0.0) for k in range(6)}


def _embedded() -> tuple[str, _Bounds]:
    # Hoffmann et al. 2022 (Chinchilla, approach 3): L = E + A / N^alpha + B / D^beta, with A = exp(a), B = exp(b).
    text = "E + exp(a - alpha * log(params)) + exp(b - beta * log(tokens))"
    return text, {"E": (0.0, 10.0, 1.0), "a": (-20.0, 60.0, 5.0), "alpha": (0.0, 3.0, 0.3),
                  "b": (-20.0, 60.0, 5.0), "beta": (0.0, 3.0, 0.3)}


_CITATIONS = {
    "parallel_scaling_law": "Chen et al. 2025",
    "vocab_scaling_law": "Tao et al. 2024",
    "sft_scaling_law": "Lin et al. 2024 (rectified law)",
    "domain_mixture_scaling_law": "Ye et al. 2024 (data mixing law)",
    "moe_scaling_law": "Clark et al. 2022",
    "data_constrained_scaling_law": "Muennighoff et al. 2023",
    "lr_bsz_scaling_law": "Step Law-style (Li et al. 2025)",
    "easy_question_scaling_law": "degree-5 polynomial in log_flops (SLDBench reference)",
    "proxy_scaling_law": "Hoffmann et al. 2022 (Chinchilla)",
}

_SINGLE_TARGET = {
    "parallel_scaling_law": _parallel,
    "vocab_scaling_law": _vocab,
    "sft_scaling_law": _sft,
    "moe_scaling_law": _moe,
    "data_constrained_scaling_law": _data_constrained,
    "lr_bsz_scaling_law": _lr_bsz,
    "easy_question_scaling_law": _easy_question,
    "proxy_scaling_law": _embedded,
}


def has_human_law(task_name: str) -> bool:
    """Whether a task (an SLDBench task or the embedded default, not user data) has a human-derived law."""
    return task_name in _CITATIONS


def human_law(task_name: str) -> LiteratureLaw:
    """Return the human-derived law of an SLDBench task, or the Chinchilla law for the embedded default.

    Parameters
    ----------
    task_name : str
        One of the 8 SLDBench task names, or ``proxy_scaling_law``.

    Raises
    ------
    TaskNotFound
        For a task with no literature law (user tasks).
    """
    task = get_task(task_name)
    if task.name not in _CITATIONS:
        raise TaskNotFound(f"Task '{task_name}' has no literature law; literature laws exist for SLDBench tasks.")
    if task.name == "domain_mixture_scaling_law":
        laws = tuple(_law(*_domain_mixture(index), task.features) for index in range(1, 6))
    else:
        text, bounds = _SINGLE_TARGET[task.name]()
        laws = (_law(text, bounds, task.features),)
    published = DATA_CONSTRAINED_PUBLISHED if task.name == "data_constrained_scaling_law" else None
    return LiteratureLaw(task=task.name, citation=_CITATIONS[task.name], laws=laws, published_constants=published)
