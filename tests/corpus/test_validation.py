from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sld.corpus import DataWarning, SchemaError, is_size_name, validate_frame


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


def chinchilla(rows: int = 8) -> pd.DataFrame:
    """``rows`` runs of the Chinchilla law (Hoffmann et al. 2022 constants), N and D growing together."""
    N, D = np.geomspace(1e7, 1e9, rows), np.geomspace(1e9, 1e11, rows)[::-1]
    return pd.DataFrame({"N": N, "D": D, "loss": 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28})


def training_error(frame: pd.DataFrame, **options) -> str:
    """Return the message of the up-front training checks for ``frame``."""
    return error(frame, training=True, **options)


def test_nonpositive_size_by_name_names_row_value_and_the_flag():
    frame = chinchilla().assign(N=lambda f: f.N.where(f.index != 2, -1e8))
    message = training_error(frame)
    assert "column 'N' is a size by its name" in message
    assert "row 3 has -100000000.0" in message
    assert "--allow-nonpositive N" in message


def test_allow_nonpositive_lets_the_size_column_through():
    frame = chinchilla().assign(N=lambda f: f.N.where(f.index != 2, 0.0))
    out = validate_frame(frame, source="train.csv", features=["N", "D"], targets=["loss"], training=True,
                         allow_nonpositive=["N"])
    assert out["N"].iloc[2] == 0.0


def test_nonpositive_value_in_a_scale_column_is_caught_by_the_data():
    # 'x' is not a size by name; its positive values span a factor of 100, so the laws take powers of it.
    frame = chinchilla().assign(x=np.r_[-1.0, np.geomspace(1, 100, 7)])
    message = training_error(frame, features=["x", "D"])
    assert "column 'x' is a scale (positive over more than a factor of 3 elsewhere)" in message
    assert "row 1 has -1.0" in message


def test_real_valued_columns_and_log_columns_may_be_negative():
    frame = chinchilla().assign(log_flops=np.linspace(-2, 3, 8), shift=np.linspace(-1, 1, 8))
    out = validate_frame(frame, source="train.csv", features=["log_flops", "shift"], targets=["loss"],
                         training=True)
    assert len(out) == 8


def test_nonpositive_sizes_pass_without_the_training_checks():
    frame = chinchilla().assign(N=lambda f: -f.N)
    assert len(validate_frame(frame, source="test.csv", features=["N", "D"], targets=["loss"])) == 8


def test_allow_nonpositive_must_name_a_feature():
    message = training_error(chinchilla(), allow_nonpositive=["loss"])
    assert "--allow-nonpositive names 'loss', not a feature (N, D)" in message


def test_too_few_rows_for_the_budget_says_which_max_params_fits():
    message = training_error(chinchilla(7), max_params=6)
    assert "7 rows, but a budget of 6 constants needs at least 8" in message
    assert "pass --max-params 5" in message


def test_short_group_is_named_with_the_budget_that_fits_every_group():
    frame = chinchilla(10).assign(model=["a"] * 6 + ["b"] * 4)
    message = training_error(frame, group="model", max_params=4)
    assert "group 'b' of column 'model' (first at row 7) has 4 rows" in message
    assert "a budget of 4 constants per group needs at least 6" in message
    assert "pass --max-params 2 (at most 2 constants fit 4 rows)" in message


def test_a_single_row_fits_no_budget():
    message = training_error(chinchilla(1), max_params=6)
    assert "1 rows, but a budget of 6 constants needs at least 8" in message
    assert "collect at least 3 rows for any search" in message


def test_enough_rows_for_the_budget_pass():
    assert len(validate_frame(chinchilla(8), source="train.csv", features=["N", "D"], targets=["loss"],
                              max_params=6)) == 8


def test_constant_feature_is_an_error():
    message = training_error(chinchilla().assign(D=1e10))
    assert message == (
        "train.csv: feature 'D' has the same value 10000000000.0 in all 8 rows, so no law can learn how it "
        "matters. Drop it from --features, or add rows where it varies."
    )


def test_value_far_from_the_median_warns_with_column_row_and_value():
    frame = chinchilla().assign(D=lambda f: f.D.where(f.index != 4, 1e308))
    with pytest.warns(DataWarning) as caught:
        out = validate_frame(frame, source="train.csv", features=["N", "D"], targets=["loss"], training=True)
    assert len(out) == 8 and len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("train.csv: column 'D' row 5 has 1e+308")
    assert "orders of magnitude from the column's median" in message and "fix or drop the row" in message


def test_values_within_six_decades_do_not_warn():
    frame = chinchilla().assign(D=np.geomspace(1e6, 1e11, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_frame(frame, source="train.csv", features=["N", "D"], targets=["loss"], training=True)


@pytest.mark.parametrize(
    ("name", "size"),
    [("N", True), ("D", True), ("num_params", True), ("dense_parameter_count", True), ("numTokens", True),
     ("data_size", True), ("log_flops", False), ("lr", False), ("proportion_domain_1", False), ("x", False)],
)
def test_size_names(name, size):
    assert is_size_name(name) is size
