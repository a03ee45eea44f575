"""Tests of selu_zoo.datasets.tabular: a user's CSV files as TFDS datasets."""

import pytest

from selu_zoo.datasets import tabular
from selu_zoo.datasets.tabular import CsvOptions


# --- options and names ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs, option", [
    ({"label_column": -1}, "label_column"),
    ({"label_column": 1.5}, "label_column"),
    ({"header": "maybe"}, "header"),
    ({"exclude_columns": (None,)}, "exclude_columns"),
    ({"task": "ranking"}, "task"),
    ({"split_column": ""}, "split_column"),
    ({"missing": "median"}, "missing"),
    ({"split_seed": -3}, "split_seed"),
    ({"delimiter": ";;"}, "delimiter"),
])
def test_bad_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=f"^{option}") as error:
        CsvOptions(**kwargs)
    assert "\n" not in str(error.value)


def test_options_normalize_command_line_values():
    options = CsvOptions(header="False", exclude_columns="id")
    assert options.header is False and options.exclude_columns == ("id",)


def test_parse_spec():
    assert tabular.parse_spec("csv:HTRU_2.csv") == ("HTRU_2.csv",)
    assert tabular.parse_spec("csv:a.csv, gs://b/v.csv ,c.csv") == (
        "a.csv", "gs://b/v.csv", "c.csv")
    assert tabular.is_csv("csv:a") and not tabular.is_csv("iris")
    for bad in ("csv:", "csv:a,b", "csv:a,,c", "iris", "npz:a.npz"):
        with pytest.raises(ValueError):
            tabular.parse_spec(bad)
