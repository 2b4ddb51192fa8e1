from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from sld.corpus import hash_file, hash_frame


def frame() -> pd.DataFrame:
    return pd.DataFrame({"group": ["a", "b"], "N": [1, 2], "loss": [3.0, 2.5]})


def test_frame_digest_is_pinned():
    # A changed digest invalidates every recorded run's provenance: change the format tag, not this value.
    assert hash_frame(frame()) == "1bf3b831526b0532eb8cbe60b6d200264196afc257865926d68041fab943f437"


def test_frame_digest_ignores_index_and_copies():
    assert hash_frame(frame()) == hash_frame(frame().set_axis([7, 9]).copy())


def test_frame_digest_sees_values_names_order_and_types():
    base = hash_frame(frame())
    assert hash_frame(frame().assign(loss=[3.0, 2.4])) != base
    assert hash_frame(frame().rename(columns={"N": "n"})) != base
    assert hash_frame(frame()[["N", "group", "loss"]]) != base
    assert hash_frame(frame().astype({"N": float})) != base
    assert hash_frame(frame().iloc[:1]) != base


def test_missing_values_hash_alike():
    with_nan = frame().assign(loss=[np.nan, 2.5], group=[None, "b"])
    with_na = frame().assign(loss=pd.array([None, 2.5], dtype="Float64"), group=[np.nan, "b"])
    assert hash_frame(with_nan) == hash_frame(with_na)


def test_text_cells_cannot_run_together():
    assert hash_frame(pd.DataFrame({"g": ["ab", "c"]})) != hash_frame(pd.DataFrame({"g": ["a", "bc"]}))


def test_file_digest_is_the_sha256_of_its_bytes(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"N,loss\n1,2\n")
    assert hash_file(path) == hashlib.sha256(b"N,loss\n1,2\n").hexdigest()
