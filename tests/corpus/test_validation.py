from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sld.corpus import SchemaError, validate_frame


def runs() -> pd.DataFrame:
    """Two groups of three runs, with an extra column a law does not use."""
    return pd.DataFrame(
        {
            "model": ["a", "a", "a", "b", "b", "b"],
            "N": [1e6, 1e7, 1e8, 1e6, 1e7, 1e8],
            "note": ["x"] * 6,
            "D": [2e7, 2e8, 2e9, 2e7, 2e8, 2e9],
            "loss": [4.0, 3.5, 3.1, 4.2, 3.6, 3.2],
        }
    )


def error(frame: pd.DataFrame, **options) -> str:
    """Return the one-line message validate_frame raises for ``frame``."""
    options = {"source": "train.csv", "features": ["N", "D"], "targets": ["loss"], **options}
    with pytest.raises(SchemaError) as info:
        validate_frame(frame, **options)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("train.csv: ")
    return message


def test_valid_frame_keeps_law_columns_in_file_order_with_group_as_str():
    frame = runs().assign(model=[1, 1, 1, 2, 2, 2]).set_axis(range(10, 16))
    out = validate_frame(frame, source="train.csv", features=["D", "N"], targets=["loss"], group="model")
    assert list(out.columns) == ["model", "N", "D", "loss"]
    assert list(out["model"]) == ["1", "1", "1", "2", "2", "2"]
    assert list(out.index) == list(range(6))
    assert out["N"].dtype == np.float64


def test_misspelled_target_suggests_the_closest_column():
    message = error(runs(), targets=["lossx"])
    assert message == (
        "train.csv: column 'lossx' not found (columns: model, N, note, D, loss). "
        "Did you mean 'loss'? Fix the name with --target loss."
    )


def test_misspelled_feature_suggests_the_closest_column():
    message = error(runs(), features=["n", "D"])
    assert "column 'n' not found" in message
    assert "Did you mean 'N'? Fix the name in --features (N)." in message


def test_missing_group_column_with_no_close_name():
    message = error(runs(), group="family")
    assert "column 'family' not found (columns: model, N, note, D, loss)" in message
    assert "Give --group one of the columns above." in message


def test_non_numeric_value_names_column_row_and_group():
    frame = runs().astype({"D": object})
    frame.loc[4, "D"] = "2e8 tokens"
    message = error(frame, group="model")
    assert "column 'D' is not numeric: row 5 (group 'b') has '2e8 tokens'" in message
    assert "Write plain numbers (e.g. 1.5e9)" in message


def test_numbers_stored_as_text_are_accepted():
    frame = runs().astype({"N": str})
    out = validate_frame(frame, source="train.csv", features=["N"], targets=["loss"])
    assert out["N"].tolist() == pytest.approx(runs()["N"].tolist())


def test_true_false_column_is_not_numeric():
    message = error(runs().assign(D=[True, False] * 3))
    assert "column 'D' is true/false, not numeric" in message
    assert "Encode it as numbers (0 and 1)" in message


def test_nan_names_column_row_and_group():
    frame = runs()
    frame.loc[2, "loss"] = np.nan
    frame.loc[5, "N"] = np.nan
    message = error(frame, group="model")
    assert "column 'loss' has a missing value (NaN) in row 3 (group 'a') (2 such rows in all)." in message
    assert "Fill in a finite number or drop the row" in message


def test_infinite_value_names_column_and_row():
    frame = runs()
    frame.loc[1, "N"] = -np.inf
    message = error(frame)
    assert "column 'N' has an infinite value (-inf) in row 2." in message
    assert "Fill in a finite number or drop the row" in message


def test_non_positive_value_in_a_positive_column():
    frame = runs()
    frame.loc[3, "D"] = 0.0
    message = error(frame, group="model", positive=["N", "D"])
    assert "column 'D' must be positive (the law takes its log or a power of it)" in message
    assert "row 4 (group 'b') has 0.0" in message
    assert "Drop the rows with values <= 0, or shift or rescale the column." in message


def test_negative_target_is_fine_unless_declared_positive():
    frame = runs().assign(loss=[-1.0] * 6)
    assert len(validate_frame(frame, source="t.csv", features=["N"], targets=["loss"])) == 6
    assert "column 'loss' must be positive" in error(frame, positive=["loss"])


def test_too_few_rows_for_the_constants():
    message = error(runs(), min_rows=7)
    assert "train.csv: 6 rows, but fitting 7 constants needs at least 7." in message
    assert "Add rows, or choose a law with fewer constants." in message


def test_too_few_rows_in_a_group():
    frame = runs().drop(index=[3, 4]).reset_index(drop=True)
    message = error(frame, group="model", min_rows=2)
    assert "group 'b' of column 'model' (first at row 4) has 1 rows" in message
    assert "fitting 2 constants per group needs at least 2" in message
    assert "Add rows to that group, drop the group, or choose a law with fewer constants." in message


def test_empty_frame_is_too_small():
    assert "0 rows" in error(runs().iloc[:0])


def test_missing_group_value_names_the_row():
    frame = runs()
    frame.loc[1, "model"] = None
    message = error(frame, group="model")
    assert "column 'model' has no value in row 2." in message
    assert "Give every row a group" in message


def test_same_column_in_two_roles_is_refused():
    message = error(runs(), features=["N", "D"], targets=["N"])
    assert "invalid column choice (columns): column 'N' is given twice; a column has one role." in message
    assert "Check --features, --target and --group." in message


def test_positive_column_must_be_a_feature_or_target():
    assert "positive column 'model' is neither a feature nor a target" in error(runs(), positive=["model"])


def test_no_features_is_refused():
    assert "invalid column choice (features)" in error(runs(), features=[])


def test_duplicated_column_in_the_file():
    frame = pd.concat([runs(), runs()[["loss"]]], axis=1)
    assert "column 'loss' appears 2 times. Rename the copies." in error(frame)


def test_long_column_lists_are_shortened():
    frame = pd.DataFrame({f"c{i}": [1.0] for i in range(30)})
    message = error(frame, features=["c1"], targets=["loss"])
    assert "c19, ... (30 in all)" in message
    assert "c25" not in message
