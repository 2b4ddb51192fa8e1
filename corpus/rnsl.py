"""Load the 20 language learning curves of "Revisiting Neural Scaling Laws" (Alabdulmohsin et al., NeurIPS 2022).

The benchmark is read where it lies, never copied into the project. The first source that answers wins:

1. the ``root`` argument (the CLI's ``--rnsl PATH``),
2. the environment variable ``SLD_RNSL``,
3. ``../shared/rnsl`` beside the checkout.

The folder holds ``benchmark.lang.csv`` (see its README.md and METHODS.md). Each curve (one ``Model`` for NMT and
LM, one ``Task`` for BIG-bench) becomes a dataset with one feature, ``seen_examples``, and one target, ``loss``;
``Training == 1`` rows are the training rows and ``Training == 0`` rows the extrapolation (test) rows. For example::

    sld bench --suite rnsl --method m4 --tasks nmt_6_enc_6_dec --rnsl /work/shared/rnsl
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from .errors import CorpusNotFound, SchemaError, UnknownTaskError, closest_name
from .validation import validate_frame

RNSL_FILE = "benchmark.lang.csv"
FEATURE = "seen_examples"
TARGET = "loss"
Domain = Literal["NMT", "LM", "BB"]
_COLUMNS = ("Domain", "Task", "Model", "Seen Examples", "Loss", "Training")
_DOMAINS: tuple[Domain, ...] = ("NMT", "LM", "BB")


@dataclass(frozen=True, eq=False)
class RnslCurve:
    """One learning curve of the benchmark, split by the paper's own ``Training`` flag.

    Parameters
    ----------
    name : str
        Identifier without commas or spaces, e.g. ``"nmt_6_enc_6_dec"``, ``"lm_1.68e+07"``, ``"bb_date_1_shot"``.
    domain : {"NMT", "LM", "BB"}
        Neural machine translation, language modelling or BIG-bench.
    label : str
        The curve as the file names it: the ``Model`` for NMT and LM, the ``Task`` for BB.
    train : pandas.DataFrame
        Columns ``seen_examples, loss``, shape (n_train, 2): the ``Training == 1`` rows, one per distinct
        ``seen_examples`` (the upstream estimators fit on a ``{x: y}`` dict, which keeps the last row of a repeated
        x; the LM rows are each published 4 times).
    test : pandas.DataFrame
        The ``Training == 0`` rows as published (repeats kept, as in the paper's scores), same columns.
    source : str
        The file read.

    """

    name: str
    domain: Domain
    label: str
    train: pd.DataFrame
    test: pd.DataFrame
    source: str


def default_rnsl_dir() -> Path:
    """Return ``../shared/rnsl`` beside the checkout (the folder holding this repository)."""
    return Path(__file__).resolve().parents[2] / "shared" / "rnsl"


def curve_name(domain: str, label: str) -> str:
    """Return a curve's identifier: domain and label, lower case, runs of other characters as ``_``.

    Examples
    --------
    >>> curve_name("NMT", "6 Enc, 6 Dec")
    'nmt_6_enc_6_dec'
    >>> curve_name("BB", "('date', '1-shot')")
    'bb_date_1_shot'
    """
    return re.sub(r"[^0-9a-z.+]+", "_", f"{domain} {label}".lower()).strip("_")


def load_rnsl(root: str | Path | None = None) -> dict[str, RnslCurve]:
    """Load every curve of the language benchmark, validated, in the file's order.

    Parameters
    ----------
    root : str or Path, optional
        Folder with ``benchmark.lang.csv``; default ``$SLD_RNSL``, then :func:`default_rnsl_dir`.

    Returns
    -------
    dict of str to RnslCurve
        Keyed by :func:`curve_name`; 20 curves for the published file.

    Raises
    ------
    CorpusNotFound
        The folder or the file is missing; the message says where it looked and how to point at it.
    SchemaError
        A missing column, an unknown domain, a non-numeric or non-positive value, or a curve without training or
        test rows (one line naming the file and the row).

    Examples
    --------
    >>> curves = load_rnsl("/work/shared/rnsl")  # doctest: +SKIP
    >>> len(curves), list(curves)[0]  # doctest: +SKIP
    (20, 'nmt_6_enc_6_dec')
    """
    path = _locate(root)
    try:
        table = pd.read_csv(path, dtype={"Domain": str, "Task": str, "Model": str})
    except Exception as exc:  # pandas raises several types for a damaged file; all mean the same here.
        raise SchemaError(f"{path}: cannot be read as CSV ({exc}). Restore {RNSL_FILE} from the benchmark.") from exc
    missing = [column for column in _COLUMNS if column not in table.columns]
    if missing:
        raise SchemaError(
            f"{path}: column {missing[0]!r} not found (columns: {', '.join(map(str, table.columns))}). "
            f"Use the benchmark's {RNSL_FILE}."
        )
    bad_domain = ~table["Domain"].isin(_DOMAINS)
    if bad_domain.any():
        row = int(bad_domain.to_numpy().argmax())
        raise SchemaError(
            f"{path}: row {row + 1}: Domain {table['Domain'].iloc[row]!r} is not one of {', '.join(_DOMAINS)}."
        )
    curves: dict[str, RnslCurve] = {}
    for domain in _DOMAINS:
        rows = table[table["Domain"] == domain]
        by = "Task" if domain == "BB" else "Model"
        for label in rows[by].astype(str).unique():
            curve = _curve(rows[rows[by].astype(str) == label], domain, label, path)
            curves[curve.name] = curve
    return dict(sorted(curves.items(), key=lambda item: _order(table, item[1])))


def check_curve_names(names: list[str] | tuple[str, ...], curves: dict[str, RnslCurve]) -> list[str]:
    """Return ``names`` if each is a curve of ``curves``, else raise ``UnknownTaskError`` naming the known ones."""
    for name in names:
        if name not in curves:
            guess = closest_name(name, curves)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise UnknownTaskError(f"Unknown rnsl curve {name!r}. Known: {', '.join(curves)}.{hint}")
    return list(names)


def _locate(root: str | Path | None) -> Path:
    if root is not None:
        folder, origin = Path(root), "--rnsl"
    elif os.environ.get("SLD_RNSL"):
        folder, origin = Path(os.environ["SLD_RNSL"]).expanduser(), "SLD_RNSL"
    else:
        folder, origin = default_rnsl_dir(), "the default ../shared/rnsl"
    path = folder / RNSL_FILE
    if not path.is_file():
        raise CorpusNotFound(
            f"{origin} {folder} has no {RNSL_FILE}. Point --rnsl or SLD_RNSL at the folder that holds it "
            "(the benchmark of Alabdulmohsin et al. 2022, e.g. ../shared/rnsl)."
        )
    return path


def _curve(rows: pd.DataFrame, domain: Domain, label: str, path: Path) -> RnslCurve:
    name = curve_name(domain, label)
    frame = rows.rename(columns={"Seen Examples": FEATURE, "Loss": TARGET})
    flag = pd.to_numeric(frame["Training"], errors="coerce")
    if not flag.isin([0, 1]).all():
        raise SchemaError(f"{path}: curve {name}: Training must be 0 or 1. Use the benchmark's {RNSL_FILE}.")

    def split(selected: pd.Series, which: str) -> pd.DataFrame:
        part = frame.loc[selected.to_numpy(), [FEATURE, TARGET]]
        if part.empty:
            raise SchemaError(f"{path}: curve {name} has no Training == {which} rows; it cannot be scored.")
        return validate_frame(
            part, source=f"{path}:{name}", features=[FEATURE], targets=[TARGET], positive=[FEATURE, TARGET]
        )

    train = split(flag == 1, "1").drop_duplicates(subset=FEATURE, keep="last")
    train = train.sort_values(FEATURE, kind="stable").reset_index(drop=True)
    return RnslCurve(name=name, domain=domain, label=label, train=train, test=split(flag == 0, "0"), source=str(path))


def _order(table: pd.DataFrame, curve: RnslCurve) -> int:
    # The file's own order of first appearance (NMT, LM, BB as published).
    by = "Task" if curve.domain == "BB" else "Model"
    hits = (table["Domain"] == curve.domain) & (table[by].astype(str) == curve.label)
    return int(hits.to_numpy().argmax())
