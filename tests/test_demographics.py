"""Age bands: one definition for every stage, in pandas and in Ibis."""
import ibis
import pandas as pd

from helpers.demographics import age_band, age_band_expr, age_band_labels
from helpers.engine import connect


def test_labels_read_as_an_analyst_writes_them():
    assert age_band_labels([25, 35, 65]) == ["under 25", "25-34", "35-64", "65+"]


def test_pandas_and_ibis_give_the_same_band_at_each_edge():
    years = [2001, 2002, 1992, 1991, 1961, 1960, None]  # ages 25, 24, 34, 35, 65, 66 in 2026, unknown
    expected = ["25-34", "under 25", "25-34", "35-64", "65+", "65+", "(unknown)"]
    assert age_band(pd.Series(years), "2026-06-30", [25, 35, 65]).tolist() == expected
    t = ibis.memtable({"y": years}, schema={"y": "int64"})
    got = connect().execute(age_band_expr(t.y, "2026-06-30", [25, 35, 65]).name("b")).tolist()
    assert [g if isinstance(g, str) else "(unknown)" for g in got] == expected
