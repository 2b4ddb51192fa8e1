from __future__ import annotations

import pandas as pd
import pytest

from sld.corpus import CorpusNotFound, SchemaError, UnsupportedFormatError, load_table, read_columns


def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {"N": [1e6, 1e7, 1e8], "D": [2e7, 2e8, 2e9], "family": ["a", "a", "b"], "loss": [4, 3.5, 3]}
    )


def test_csv_is_read_and_validated(tmp_path):
    runs().to_csv(tmp_path / "runs.csv", index=False)
    out = load_table(tmp_path / "runs.csv", features=["N", "D"], targets=["loss"], group="family")
    assert list(out.columns) == ["N", "D", "family", "loss"]
    assert out["loss"].tolist() == [4, 3.5, 3]


def test_parquet_is_read_and_validated(tmp_path):
    runs().to_parquet(tmp_path / "runs.parquet", index=False)
    out = load_table(tmp_path / "runs.parquet", features=["N"], targets=["loss"])
    assert list(out.columns) == ["N", "loss"]


def test_suffix_case_does_not_matter(tmp_path):
    runs().to_csv(tmp_path / "RUNS.CSV", index=False)
    assert len(load_table(tmp_path / "RUNS.CSV", features=["N"], targets=["loss"])) == 3


def test_relative_path_names_the_file_as_given(tmp_path):
    frame = runs()
    frame.loc[1, "D"] = -5
    frame.to_csv("train.csv", index=False)  # the working directory is tmp_path
    with pytest.raises(SchemaError) as info:
        load_table("train.csv", features=["N", "D"], targets=["loss"], group="family", positive=["D"])
    assert str(info.value).startswith("train.csv: column 'D' must be positive")
    assert "row 2 (group 'a') has -5.0" in str(info.value)


def test_unknown_suffix_is_refused(tmp_path):
    (tmp_path / "runs.xlsx").write_bytes(b"")
    with pytest.raises(UnsupportedFormatError) as info:
        load_table(tmp_path / "runs.xlsx", features=["N"], targets=["loss"])
    message = str(info.value)
    assert "\n" not in message
    assert "runs.xlsx: cannot read files ending in '.xlsx'; known: .csv, .parquet, .pq." in message
    assert "Save the table as CSV or parquet." in message


def test_missing_file(tmp_path):
    with pytest.raises(CorpusNotFound, match=r"nothere\.csv: no such file\. Check the path"):
        load_table(tmp_path / "nothere.csv", features=["N"], targets=["loss"])


def test_damaged_parquet(tmp_path):
    (tmp_path / "runs.parquet").write_text("N,loss\n1,2\n")
    with pytest.raises(SchemaError) as info:
        load_table(tmp_path / "runs.parquet", features=["N"], targets=["loss"])
    message = str(info.value)
    assert "\n" not in message
    assert "runs.parquet: cannot be read as parquet" in message
    assert "Check that it is a parquet file." in message


def test_empty_csv(tmp_path):
    (tmp_path / "runs.csv").write_text("")
    with pytest.raises(SchemaError, match=r"runs\.csv: cannot be read as CSV"):
        load_table(tmp_path / "runs.csv", features=["N"], targets=["loss"])


def test_min_rows_is_passed_on(tmp_path):
    runs().to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(SchemaError, match="3 rows, but fitting 4 constants"):
        load_table(tmp_path / "runs.csv", features=["N"], targets=["loss"], min_rows=4)


def test_inputs_to_predict_on_need_no_target(tmp_path):
    runs().drop(columns="loss").to_csv(tmp_path / "grid.csv", index=False)
    out = load_table(tmp_path / "grid.csv", features=["N", "D"], targets=(), group="family")
    assert list(out.columns) == ["N", "D", "family"]


def test_read_columns_in_file_order(tmp_path):
    runs().to_csv(tmp_path / "runs.csv", index=False)
    runs().to_parquet(tmp_path / "runs.parquet", index=False)
    assert read_columns(tmp_path / "runs.csv") == ["N", "D", "family", "loss"]
    assert read_columns(tmp_path / "runs.parquet") == ["N", "D", "family", "loss"]
