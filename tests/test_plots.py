"""Report look: takeaways render as written in the HTML report (Markdown) and as wrapped text elsewhere; one
vocabulary and tables formatted for people."""
from __future__ import annotations

import matplotlib.pyplot as plt
import mistune
import pandas as pd
import pytest

from helpers import plots


def test_takeaway_renders_its_text_literally_and_numbered_actions_as_a_list():
    sentence = ("Segment Can't_Lose *them* <b> costs EUR 1,236 (5-95 %: -162 to 1,689) # of #1 [x]\n"
                "1. Send the 10% offer to About_to_Sleep\n2. Call the At Risk customers")
    html = mistune.html(plots.takeaway_markdown(sentence))
    assert "<p>Segment Can't_Lose *them* &lt;b&gt; costs EUR 1,236 (5-95 %: -162 to 1,689) # of #1 [x]</p>" in html
    assert "<ol>" in html and html.count("<li>") == 2 and "About_to_Sleep" in html


def test_say_outside_a_notebook_prints_the_sentence_wrapped(capsys):
    plots.say("word " * 40 + "\nsecond line", width=50)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 50 and lines[-1] == "second line"


# ---------------------------------------------------------------- one vocabulary, tables for people

@pytest.mark.parametrize("internal,reader", [
    ("T", "days since first purchase"),
    ("recency", "days from first to last purchase"),     # lifetimes' recency, not 03's days since last order
    ("recency_days", "days since last order"),
    ("frequency", "repeat purchases"),
    ("monetary_value", "mean repeat order value"),
    ("exp_purchases_30d", "expected purchases, next 30 days"),
    ("exp_purchases_365d", "expected purchases, next 365 days"),
    ("p_purchase_90d", "P(order in the next 90 days)"),
    ("clv_6m", "CLV, next 6 months (margin)"),
    ("second_within_60d", "second order within 60 days"),
    ("hit_rate_at_5", "hit rate (one of the 5 suggestions bought)"),
    ("some_new_column", "some new column"),
])
def test_model_internal_and_snake_case_names_get_one_reader_name(internal, reader):
    assert plots.display_name(internal) == reader


def test_for_readers_renames_columns_index_names_and_leaves_the_values():
    df = pd.DataFrame({"p_alive": [0.5], "T": [10]}, index=pd.Index(["a"], name="rfm_segment"))
    out = plots.for_readers(df)
    assert list(out.columns) == ["P(alive)", "days since first purchase"] and out.index.name == "segment"
    assert out.iloc[0].tolist() == [0.5, 10] and plots.unreadable_names(df) == ["p_alive", "T", "rfm_segment"]
    assert plots.unreadable_names(out) == []


def test_a_table_for_readers_shows_money_with_its_currency_shares_in_percent_and_counts_with_separators():
    df = pd.DataFrame({"revenue": [1234567.4], "aov": [1234.5], "revenue_share": [0.2372], "customers": [12345],
                       "clv_share_pct": [43.14], "mean_clv": [12.5]})
    t = plots.table_for_readers(df, {"revenue": "money", "aov": "money2", "revenue_share": "share",
                                     "customers": "count", "clv_share_pct": "pct", "mean_clv": "money2"}, "CZK")
    assert t.iloc[0].to_dict() == {"net revenue (CZK)": "1,234,567", "average order value (CZK)": "1,234.50",
                                   "share of net revenue": "23.7%", "customers": "12,345",
                                   "share of total CLV": "43.1%", "mean CLV (margin, CZK)": "12.50"}
    assert df["revenue"].iloc[0] == 1234567.4  # the numbers themselves are left alone


def test_a_long_table_shows_its_first_15_rows_and_says_where_the_rest_is():
    df = pd.DataFrame({"customers": range(40, 0, -1)}, index=pd.Index([f"s{i}" for i in range(40)], name="segment"))
    t = plots.table_for_readers(df, {"customers": "count"}, rest="segments.parquet")
    assert len(t) == 16 and list(t.index[:15]) == [f"s{i}" for i in range(15)]
    assert t.index[-1] == "... 25 more rows in segments.parquet" and t.iloc[-1, 0] == ""
    assert len(plots.table_for_readers(df.head(15), {"customers": "count"})) == 15


def test_bar_ticks_carry_thousands_separators_never_scientific_notation():
    df = pd.DataFrame({"group": ["a", "b"], "revenue": [2_500_000.0, 1_000_000.0]})
    ax = plots.plot_share_bars(df, "group", "revenue", "Revenue", "net revenue (EUR)")
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "2,000,000" in ticks and not any("e" in t for t in ticks)
    assert ax.get_xlim()[0] == 0  # bars start at zero
    plt.close("all")


def test_offer_colours_are_grey_for_no_discount_and_distinct_and_ordered_for_discounts():
    opts = ["contact, no discount", "5% off", "10% off", "15% off", "20% off"]
    colours = plots.option_colors(opts, "contact, no discount")
    assert colours[0] == (0.6, 0.6, 0.6) and len(set(colours)) == len(opts)
    lightness = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in colours[1:]]  # relative luminance
    assert lightness == sorted(lightness, reverse=True)  # a bigger discount is a darker bar
