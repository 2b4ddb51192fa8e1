import numpy as np
import pandas as pd
import pytest

from sld.corpus import CorpusNotFound, SchemaError, UnknownTaskError, check_curve_names, curve_name, load_rnsl
from sld.corpus.rnsl import RNSL_FILE, default_rnsl_dir


def _write(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["Domain", "Task", "Model", "Seen Examples", "Loss", "Training"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / RNSL_FILE, index=False)
    return folder


def _lm_rows(copies=4):
    block = [("LM", "val_loss", "1.68e+07", 1e9 * (i + 1), 0.999 - 0.01 * i, int(i < 4)) for i in range(6)]
    return block * copies


def test_shared_benchmark_has_20_curves_split_by_the_paper_flag(shared_rnsl):
    curves = load_rnsl(shared_rnsl)
    assert len(curves) == 20
    assert [c.domain for c in curves.values()].count("BB") == 10
    assert next(iter(curves)) == "nmt_6_enc_6_dec"
    nmt = curves["nmt_6_enc_6_dec"]
    assert (len(nmt.train), len(nmt.test)) == (10, 1)
    assert list(nmt.train.columns) == ["seen_examples", "loss"]
    # LM rows are published 4 times: training keeps one per x, the test rows stay as published (4 copies).
    lm = curves["lm_1.68e+07"]
    assert lm.train["seen_examples"].is_unique and len(lm.train) == 59
    assert len(lm.test) == 240 and lm.test["seen_examples"].nunique() == 60
    assert lm.train["seen_examples"].max() < lm.test["seen_examples"].min()


def test_duplicates_collapse_in_training_only(tmp_path):
    curve = load_rnsl(_write(tmp_path / "b", _lm_rows()))["lm_1.68e+07"]
    assert len(curve.train) == 4 and len(curve.test) == 8
    assert np.all(np.diff(curve.train["seen_examples"]) > 0)


def test_root_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SLD_RNSL", str(_write(tmp_path / "env", _lm_rows(1))))
    assert list(load_rnsl()) == ["lm_1.68e+07"]
    with pytest.raises(CorpusNotFound, match=r"--rnsl .*missing has no benchmark\.lang\.csv"):
        load_rnsl(tmp_path / "missing")
    monkeypatch.delenv("SLD_RNSL")
    assert default_rnsl_dir().parts[-2:] == ("shared", "rnsl")


def test_bad_rows_fail_through_the_corpus_validation(tmp_path):
    rows = _lm_rows(1)
    rows[1] = ("LM", "val_loss", "1.68e+07", 2e9, -0.5, 1)
    with pytest.raises(SchemaError, match=r"lm_1\.68e\+07.*'loss'"):
        load_rnsl(_write(tmp_path / "neg", rows))
    with pytest.raises(SchemaError, match="no Training == 0 rows"):
        load_rnsl(_write(tmp_path / "notest", [(*r[:5], 1) for r in _lm_rows(1)]))
    with pytest.raises(SchemaError, match="Domain 'CV'"):
        load_rnsl(_write(tmp_path / "cv", [("CV", *_lm_rows(1)[0][1:])]))


def test_curve_names_have_no_commas_and_unknown_names_are_named(tmp_path):
    assert curve_name("NMT", "6 Enc, 28 Dec") == "nmt_6_enc_28_dec"
    curves = load_rnsl(_write(tmp_path / "b", _lm_rows(1)))
    with pytest.raises(UnknownTaskError, match=r"Did you mean 'lm_1\.68e\+07'"):
        check_curve_names(["lm_1.68e+7"], curves)
