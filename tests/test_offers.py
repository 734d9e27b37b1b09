"""Offers: affinities, repeat cycles, the similar-customer fallback, no look-ahead, the contact cap, holdout."""
from __future__ import annotations

import shutil

import ibis
import numpy as np
import pandas as pd
import pytest

import lines
from helpers import artifacts, engine, kpis, offers, plots
from helpers.config import ConfigError, OffersConfig, config_from_dict, load_config
from helpers.pages import offers as page

AS_OF = "2025-12-31"  # affinity anchors must lie on or before 2025-10-02 (90 days earlier)


@pytest.fixture(scope="module")
def cfg():
    base = load_config("config/default.yml")
    return base.replace(offers=base.offers.replace(min_support=1, min_lift=1.0, similar_min_customers=3))


def line(customer_id, when, category, product="P1", amount=50.0, order_id=None, is_return=False):
    return {"order_id": order_id or f"{customer_id}-{when}-{category}", "customer_id": customer_id,
            "order_date": pd.Timestamp(when), "amount": amount, "quantity": 1.0, "product_id": product,
            "category": category, "status": "returned" if is_return else "completed", "payment_method": "card",
            "channel": "web", "currency": "EUR", "discount_amount": 0.0, "coupon_code": "", "is_return": is_return,
            "source_row": 0}


table = lines.table  # order lines written here, as an in-memory table (tests/lines.py)


AFFINITY_SHOP = [
    line("C1", "2025-01-10", "laptops"), line("C1", "2025-04-10", "accessories"),   # +90 days: counts
    line("C2", "2025-01-10", "laptops"), line("C2", "2025-04-11", "accessories"),   # +91 days: too late
    line("C3", "2025-01-10 10:00", "laptops", order_id="O3"),                       # same order: not "later"
    line("C3", "2025-01-10 10:00", "books", order_id="O3"),
    line("C4", "2025-03-01", "books"), line("C4", "2025-03-05", "accessories"),
    line("C5", "2025-12-01", "laptops"), line("C5", "2025-12-02", "accessories"),   # anchor too recent
    line("C6", "2025-01-10", "laptops"), line("C6", "2025-02-01", "books", amount=-50.0, is_return=True),
]


def test_affinity_counts_later_purchases_within_the_window_and_its_lift_over_the_base_rate(con, cfg):
    t = offers.affinity_table(table(con, AFFINITY_SHOP, "aff"), AS_OF, cfg)
    # anchors: laptops C1 C2 C3 C6 (4), accessories C1 C2 C4 (3), books C3 C4 (2);
    # base rate of accessories = 2 buyers after a non-accessories anchor / (4 + 2) anchors
    assert list(t.index) == [("books", "accessories"), ("laptops", "accessories")]
    assert t.loc[("books", "accessories")].to_dict() == {
        "customers": 2, "support": 1, "share": 0.5, "base_rate": 0.3333, "lift": 1.5}
    assert t.loc[("laptops", "accessories")].to_dict() == {
        "customers": 4, "support": 1, "share": 0.25, "base_rate": 0.3333, "lift": 0.75}


def test_affinity_below_minimum_support_is_left_out(con, cfg):
    strict = cfg.offers.replace(min_support=2)
    assert offers.affinity_table(table(con, AFFINITY_SHOP, "aff2"), AS_OF, strict).empty


REPEAT_SHOP = [line("R1", d, "books", product=p) for d, p in [
    ("2025-01-01", "B1"), ("2025-01-31", "B1"), ("2025-01-31 18:00", "B2"), ("2025-03-02", "B2"), ("2025-04-21", "B2")]
] + [line("R1", "2025-02-10", "home", product="H1")]


def test_repeat_cycle_is_the_median_interval_between_purchase_days(con, cfg):
    hist = offers.category_history_expr(table(con, REPEAT_SHOP, "rep"), "2025-06-30")
    cyc = offers.repeat_cycles(hist, "2025-06-30", cfg).to_pandas().set_index("category")
    # purchase days Jan 1, Jan 31 (two orders, one day), Mar 2, Apr 21: gaps 30, 30, 50 -> median 30
    assert list(cyc.index) == ["books"]
    r = cyc.loc["books"]
    assert (r.days, r.interval_days, str(r.due_date.date()), r.days_until_due, r.due) == (
        4, 30, "2025-05-21", -40, True)


def test_a_median_interval_and_a_score_on_a_half_round_to_even_as_pandas_rounds_them(con, cfg):
    # gaps 30 and 31 days: median 30.5 -> every ~30 days (SQL's ROUND would say 31); gaps 31 and 32 -> 32.
    # Two of 64 purchase days (0.03125) score 0.0312 (pandas' np.round), not 0.0313.
    rows = [line("H1", d, "books") for d in ("2025-01-01", "2025-01-31", "2025-03-03")]
    rows += [line("H2", d, "books") for d in ("2025-01-01", "2025-02-01", "2025-03-05")]
    rows += [line("H3", d, "home" if i > 1 else "books") for i, d in enumerate(pd.date_range("2025-01-01", periods=64))]
    s = offers.suggest(table(con, rows, "halves"), None, "2025-06-30", cfg).set_index(["customer_id", "category"])
    assert "every ~30 days" in s.loc[("H1", "books"), "reason"] and "every ~32 days" in s.loc[("H2", "books"), "reason"]
    assert s.loc[("H3", "books"), "score"] == 0.0312 == np.round(2 / 64, 4)
    x = pd.Series([0.5, 1.5, 2.5, -0.5, 0.03125, 0.00015, 1 / 3, 0.6129032258064516])
    t = ibis.memtable(pd.DataFrame({"x": x}))
    got = con.execute(t.select(a=offers.round_even(t.x), b=offers.round_even(t.x, 4)))
    assert got.a.tolist() == x.round().tolist() and got.b.tolist() == x.round(4).tolist()


def test_purchase_days_kept_at_a_later_cutoff_give_the_same_history_and_affinities(con, cfg):
    # what the holdout evaluation relies on: offers.run keeps the purchase days up to as_of once and
    # reads them at the holdout's earlier cut-off; the later days (and the later orders) must not count
    orders = table(con, AFFINITY_SHOP + REPEAT_SHOP, "kept")
    days = offers.purchase_days(orders, "2025-12-31")
    key = ["customer_id", "category"]
    pairs = ["antecedent", "consequent"]
    for at in ("2025-03-02", "2025-06-30"):
        own = offers.customer_history(orders, at, products=False).sort_values(key, ignore_index=True)
        kept = offers.customer_history(orders, at, products=False, days=days).sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(kept, own)
        own = offers.affinity_expr(orders, at).to_pandas().sort_values(pairs, ignore_index=True)
        kept = offers.affinity_expr(orders, at, days=days).to_pandas().sort_values(pairs, ignore_index=True)
        pd.testing.assert_frame_equal(kept, own)
    first = offers.customer_history(orders, "2025-03-02", products=False, days=days).set_index(key)
    assert first.loc[("R1", "books"), "days"] == 3 and first.loc[("R1", "books"), "last_amount"] == 50.0


def test_repeat_category_comes_first_with_the_customers_own_product(con, cfg):
    s = offers.suggest(table(con, REPEAT_SHOP, "rep2"), None, "2025-06-30", cfg)
    top = s[s["rank"] == 1].iloc[0]
    assert (top.category, top.product_id, top.score) == ("books", "B2", 0.8)
    assert top.reason.startswith("repeat due") and "overdue since 2025-05-21" in top.reason


SIMILAR_SHOP = [
    line("S1", "2025-01-05", "beauty"), line("S1", "2025-02-01", "fashion"),
    line("S2", "2025-01-05", "beauty"), line("S2", "2025-03-01", "fashion"),
    line("S3", "2025-01-05", "beauty"), line("S3", "2025-02-01", "books"),
    line("M1", "2025-01-05", "beauty"), line("M1", "2025-02-01", "home"),        # other region
    line("N1", "2025-12-20", "beauty"),                                           # one order, recent
]
PEOPLE = pd.DataFrame({"customer_id": ["S1", "S2", "S3", "M1", "N1"], "gender": ["F"] * 5,
                       "birth_year": [1990] * 5, "region": ["North", "North", "North", "South", "North"]})


def test_one_order_customer_gets_what_similar_customers_bought_next(con, cfg):
    s = offers.suggest(table(con, SIMILAR_SHOP, "sim"), PEOPLE, AS_OF, cfg)
    n1 = s[s.customer_id == "N1"].set_index("rank")
    # S1, S2, S3 share gender, age band 35-44, region North and first category beauty (3 = minimum group)
    assert list(n1.category[:2]) == ["fashion", "books"]
    assert list(n1.score[:2]) == [0.6667, 0.3333]
    assert "gender + age band + region + first category" in n1.reason[1]


def test_too_small_group_falls_back_to_a_coarser_one(con, cfg):
    coarse = cfg.replace(offers=cfg.offers.replace(similar_min_customers=4))
    s = offers.suggest(table(con, SIMILAR_SHOP, "sim2"), PEOPLE, AS_OF, coarse)
    n1 = s[s.customer_id == "N1"].set_index("rank")
    # gender + age band + first category adds M1 (4 customers): fashion 2/4, books 1/4, home 1/4
    assert n1.score[1] == 0.5 and "(gender + age band + first category)" in n1.reason[1]
    assert list(n1.category) == ["fashion", "books", "home"]


def test_every_customer_gets_top_n_distinct_ranked_categories(con, cfg):
    s = offers.suggest(table(con, SIMILAR_SHOP, "sim3"), PEOPLE, AS_OF, cfg)
    assert list(s.columns) == offers.OFFER_COLUMNS
    assert not s.duplicated(["customer_id", "category"]).any()
    assert s.groupby("customer_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
    assert s["rank"].max() <= cfg.offers.top_n


def test_a_category_with_two_reasons_is_offered_once_under_the_reason_that_ranks_first(con, cfg):
    # accessories is both affine to books (lift 1.5) and what similar customers bought (50 %): for a
    # one-day buyer the similar-customer evidence ranks first, for a customer with history the affinity
    fine = cfg.replace(offers=cfg.offers.replace(similar_min_customers=1))
    rows = AFFINITY_SHOP + [line("X", "2025-12-20", "books"),
                            line("Y", "2025-11-01", "laptops"), line("Y", "2025-11-20", "books")]
    s = offers.suggest(table(con, rows, "two_reasons"), None, AS_OF, fine).set_index("customer_id")
    assert s.loc[["X"], "category"].tolist() == ["accessories"] == s.loc[["Y"], "category"].tolist()
    assert s.loc["X", "reason"].startswith("similar customers: 50% of customers like them")
    assert s.loc["Y", "reason"] == "bought together later: 50% of books buyers buy accessories within 90 days (lift 1.5)"


# --------------------------------------------------------------------------- contact cap

CAMPAIGNS = pd.DataFrame({
    "customer_id": ["today", "six_days", "six_days_late", "seven_days", "tomorrow", "old"],
    "sent_date": pd.to_datetime(["2025-12-31", "2025-12-25", "2025-12-25 23:59:59", "2025-12-24", "2026-01-01",
                                 "2025-06-01"], format="ISO8601").astype("datetime64[us]"),
})


@pytest.mark.parametrize("as_ibis", [False, True], ids=["pandas", "ibis"])
def test_contact_cap_excludes_exactly_the_customers_contacted_inside_the_window(con, as_ibis):
    camp = con.create_table("camp", CAMPAIGNS, overwrite=True) if as_ibis else CAMPAIGNS
    assert offers.contact_cap(camp, AS_OF, 7) == {"today", "six_days", "six_days_late"}


@pytest.mark.parametrize("min_days, expected", [(1, {"today"}), (8, {"today", "six_days", "six_days_late", "seven_days"})])
def test_contact_cap_window_follows_the_configured_days(min_days, expected):
    assert offers.contact_cap(CAMPAIGNS, AS_OF, min_days) == expected


def test_cap_takeaway_says_how_many_targets_are_left_out():
    capped = offers.contact_cap(CAMPAIGNS, AS_OF, 7)
    targets = pd.DataFrame({"customer_id": ["today", "old", "x"]})
    assert list(offers.apply_contact_cap(targets, capped).customer_id) == ["old", "x"]
    shown = offers.OffersResult(capped=capped, cfg=OffersConfig(min_days_between_contacts=7))
    assert "1 of them were on the target list" in page.cap_takeaway(shown, targets)


# --------------------------------------------------------------------------- second-order list, outputs

def test_second_order_list_keeps_first_time_buyers_past_the_day_and_within_the_maximum(con, cfg):
    rows = [line(c, d, "books") for c, d in [("in31", "2025-11-30"), ("out30", "2025-12-01"), ("in365", "2025-01-01"),
                                              ("out366", "2024-12-30")]]
    rows += [line("two", "2025-06-01", "books"), line("two", "2025-07-01", "home")]
    o = table(con, rows, "second")
    s = offers.suggest(o, None, AS_OF, cfg)
    lst = offers.second_order_list(o, s, AS_OF, cfg, day=30.0)
    assert list(lst.customer_id) == ["in31", "in365"]
    assert lst.suggested_category.notnull().all()


def test_the_second_order_day_is_02s_when_it_was_read_at_the_same_cutoff_and_quantile(con, cfg, tmp_path):
    """06 starts its second-order list where notebook 02 said second orders come (second_orders.json) instead of
    counting every gap between orders again; a card of another as_of or quantile is not this month's figure."""
    rows = [line("a", "2025-01-01", "books"), line("a", "2025-01-11", "books"),
            line("b", "2025-02-01", "books"), line("b", "2025-03-03", "home")]
    o = table(con, rows, "gaps")
    counted = offers.second_order_day(o, AS_OF, cfg)
    assert counted in (10.0, 30.0)
    month = tmp_path / "shop" / "2025-12"
    q = cfg.kpis.inactivity_quantile
    artifacts.write(month, "second_orders", {"as_of": AS_OF, "inactivity_quantile": q, "second_order_day": 99.0})
    assert offers.second_order_day(o, AS_OF, cfg, month) == 99.0
    artifacts.write(month, "second_orders", {"as_of": AS_OF, "inactivity_quantile": q, "second_order_day": None})
    assert np.isnan(offers.second_order_day(o, AS_OF, cfg, month))  # nobody ordered twice: no list
    for other in ({"as_of": "2025-11-30", "inactivity_quantile": q}, {"as_of": AS_OF, "inactivity_quantile": 0.5}):
        artifacts.write(month, "second_orders", {**other, "second_order_day": 99.0})
        assert offers.second_order_day(o, AS_OF, cfg, month) == counted


def test_notebook_02s_second_order_day_is_the_one_06_would_count(demo_dir, cfg, tmp_path):
    """second_orders.json holds the figure 06 counted itself before: the same day from 02's order facts."""
    month = tmp_path / "demo" / "2026-06"
    shutil.copytree(demo_dir, month)
    res = kpis.run(month, "2026-06-30", cfg)
    card = artifacts.read(month, "second_orders")
    assert card == {"as_of": "2026-06-30", "inactivity_quantile": cfg.kpis.inactivity_quantile,
                    "second_order_day": res.suggested_inactivity_days}
    orders = artifacts.table(engine.connect(cfg.engine), month, "orders_clean")
    assert card["second_order_day"] == offers.second_order_day(orders, "2026-06-30", cfg) > 0


def test_config_rejects_a_lift_below_one():
    with pytest.raises(ConfigError, match="offers.min_lift"):
        config_from_dict({"offers": {"min_lift": 0.5}})


# --------------------------------------------------------------------------- demo shop

@pytest.fixture(scope="module")
def demo_dir(demo_shop):
    """The demo shop's cleaned month (conftest: generated and cleaned in a temporary folder)."""
    return demo_shop[0]


@pytest.fixture(scope="module")
def demo_part(demo_dir):
    """Orders and customers of the demo shop's first 4,000 customer ids (keeps the test file fast)."""
    orders = artifacts.read(demo_dir, "orders_clean")
    customers = artifacts.read(demo_dir, "customers_clean")
    keep = sorted(customers.customer_id)[:4000]
    return orders[orders.customer_id.isin(keep)].reset_index(drop=True), customers[customers.customer_id.isin(keep)]


def test_suggestions_ignore_orders_after_the_cutoff(con, demo_part):
    cfg = load_config("config/default.yml")
    orders, customers = demo_part
    cutoff = "2026-03-31"
    past = orders[orders.order_date < pd.Timestamp("2026-04-01")]
    extra = orders.sample(3000, random_state=1).assign(order_date=pd.Timestamp("2026-04-01 00:00:00"),
                                                       category="new_range", product_id="PNEW")
    future = pd.concat([orders, extra], ignore_index=True)
    a = offers.suggest(con.create_table("past", past, overwrite=True), customers, cutoff, cfg)
    b = offers.suggest(con.create_table("future", future, overwrite=True), customers, cutoff, cfg)
    assert len(a) > 5_000
    pd.testing.assert_frame_equal(a, b)


def test_on_the_demo_shop_personalised_hit_rate_beats_both_baselines(con, demo_dir):
    cfg = load_config("config/default.yml")
    o = artifacts.table(con, demo_dir, "orders_clean")
    c = artifacts.table(con, demo_dir, "customers_clean")
    ev = offers.evaluate_holdout(o, c, "2026-06-30", cfg)
    hit = ev["hit_rate"]
    assert hit["personalised"] > hit["most popular categories"] and hit["personalised"] > hit["same as last time"]
    assert ev.coverage["personalised"] == 1.0
    res = offers.OffersResult(evaluation=ev, cfg=cfg.offers)
    assert cfg.offers.top_n == 3
    assert "personalised suggestions win" in page.evaluation_takeaway(res) and "@3" in page.evaluation_takeaway(res)
    shown = page.evaluation_table(res)
    assert list(shown.columns) == ["customers", "buyers in the horizon", "hit rate (one of the 3 suggestions bought)",
                                   "customers with a suggestion", "categories suggested", "cut-off"]
    assert shown.loc["personalised", "hit rate (one of the 3 suggestions bought)"] == f"{100 * hit['personalised']:.1f}%"


def test_a_shop_above_evaluation_customers_is_checked_on_a_fixed_random_sample_of_that_many(con, demo_part):
    base = load_config("config/default.yml")
    cfg = base.replace(offers=base.offers.replace(evaluation_customers=1000))
    o = con.create_table("sampled", demo_part[0], overwrite=True)
    (first, n), (again, _) = offers.holdout_sample(o, "2026-06-30", cfg), offers.holdout_sample(o, "2026-06-30", cfg)
    assert n > 1000 and first.to_pyarrow().equals(again.to_pyarrow())
    evs = [offers.evaluate_holdout(o, demo_part[1], "2026-06-30", cfg, sample=s) for s in (first, again)]
    pd.testing.assert_frame_equal(*evs)
    assert evs[0].customers.tolist() == [1000] * 3
    res = offers.OffersResult(evaluation=evs[0], cfg=cfg.offers, evaluation_base=n)
    assert page.evaluation_takeaway(res).endswith(f" Measured on a random sample of 1,000 of the {n:,} customers.")
    assert offers.holdout_sample(o, "2026-06-30", base) == (None, n)


def test_saved_offers_and_segment_examples_carry_no_customer_ids(con, demo_part, tmp_path):
    cfg = load_config("config/default.yml")
    s = offers.suggest(con.create_table("part", demo_part[0], overwrite=True), None, "2026-06-30", cfg)
    offers.save_offers(tmp_path, s)
    back = offers.load_offers(tmp_path)
    assert list(back.columns) == offers.OFFER_COLUMNS and len(back) == len(s)
    seg = pd.DataFrame({"customer_id": s.customer_id.unique()})
    seg["rfm_segment"] = np.where(seg.index % 2 == 0, "A", "B")
    ex = offers.examples_by_segment(s, seg)
    assert set(ex.index) == {"A", "B"} and not ex.astype(str).apply(lambda c: c.str.contains(r"C\d{5}")).any().any()
    artifacts.check("offers", back)


def test_examples_by_segment_break_ties_as_value_counts_over_the_customers_in_id_order():
    # few customers and categories: many ties, each won by the value of the first customer in id order
    rng = np.random.default_rng(5)
    ids = [f"K{i:03d}" for i in range(60)]
    rows = [(c, r, cat) for c in ids for r, cat in enumerate(rng.choice(["books", "home", "toys"], 2, replace=False), 1)]
    s = pd.DataFrame(rows, columns=["customer_id", "rank", "category"])
    s["reason"] = np.where(rng.random(len(s)) < 0.5, "repeat: x", "similar customers: y")
    seg = pd.DataFrame({"customer_id": ids, "rfm_segment": rng.choice(["A", "B", "C", "D"], len(ids))})
    got = offers.examples_by_segment(s, seg)
    first = s[s["rank"] == 1].merge(seg, on="customer_id").sort_values("customer_id")
    first["trio"] = first.customer_id.map(s.groupby("customer_id").category.agg(", ".join))
    first["kind"] = first.reason.str.split(":").str[0]
    for name, g in first.groupby("rfm_segment"):
        want = (len(g), g.category.value_counts().index[0], g.trio.value_counts().index[0],
                g.kind.value_counts().index[0])
        assert tuple(got.loc[name, ["customers", "top_category", "most_common_top3", "main_reason"]]) == want


def test_suggested_categories_are_one_text_column_best_first_whatever_top_n_is():
    s = pd.DataFrame({"customer_id": ["B", "A", "A", "A", "B"], "rank": [1, 2, 1, 3, 2],
                      "category": ["toys", "home", "books", "garden", "fashion"]})
    assert offers.suggested_categories(s).values.tolist() == [["A", "books; home; garden"], ["B", "toys; fashion"]]
    assert offers.suggested_categories(s, top_n=1).values.tolist() == [["A", "books"], ["B", "toys"]]


def test_offers_page_uses_the_results_settings_and_shows_the_hit_rate_header_with_its_n(con, cfg):
    ev = pd.DataFrame({"customers": 10, "buyers_in_horizon": 5, "hit_rate": [0.6, 0.4, 0.2], "coverage": 1.0,
                       "categories_suggested": 3, "cutoff": "2025-10-01"},
                      index=pd.Index(["personalised", "most popular categories", "same as last time"], name="method"))
    oc = cfg.offers.replace(top_n=5, affinity_window_days=90, second_order_max_days=200)
    aff = offers.affinity_table(table(con, AFFINITY_SHOP, "aff_run"), AS_OF, cfg)
    second = pd.DataFrame({"customer_id": pd.Series(dtype=str), "suggested_category": pd.Series(dtype=str),
                           "days_since_first": pd.Series(dtype="int64")})
    res = offers.OffersResult(affinities=aff, repeats=pd.DataFrame(), evaluation=ev,
                              capped=set(), second_order_day=30.0, second_order=second, examples=pd.DataFrame(),
                              as_of=AS_OF, cfg=oc)
    assert "hit rate (one of the 5 suggestions bought)" in page.evaluation_table(res).columns
    assert "hit_rate" in res.evaluation.columns  # the numbers keep their name
    assert "60.0% hit rate @5" in page.evaluation_takeaway(res)
    (a, b), top = next(aff.iterrows())
    assert page.affinity_takeaway(res).startswith(f"Of customers who bought {a}, {top.share:.0%} bought {b} within 90 days")
    pd.testing.assert_frame_equal(page.affinities_table(res, top=2), page.affinities_for_readers(aff.head(2), 90))
    assert plots.unreadable_names(page.affinities_table(res)) == [] and plots.unreadable_names(page.evaluation_table(res)) == []
    assert page.second_order_takeaway(res) == "No first-time buyer is between 30 and 200 days past the first order."


def test_the_sections_tables_show_reader_names_counts_with_separators_and_shares_in_percent():
    repeats = pd.DataFrame({"customers_repeating": [1234], "median_interval_days": [79.0], "due_now": [1000],
                            "due_share": [0.8104]}, index=pd.Index(["fashion"], name="category"))
    examples = pd.DataFrame({"customers": [3961], "top_category": ["shoes"], "top_category_share": [0.2136],
                             "most_common_top3": ["shoes, bags, hats"], "main_reason": ["repeat due"]},
                            index=pd.Index(["Loyal Customers"], name="rfm_segment"))
    second = pd.DataFrame({"customers": [485], "median_days_since_first": [245.0], "share": [0.3401]},
                          index=pd.Index(["shoes"], name="suggested_category"))
    shown = {"repeats": page.repeats_for_readers(repeats, 90), "examples": page.examples_for_readers(examples),
             "second orders": page.second_order_for_readers(second)}
    assert {k: plots.unreadable_names(t) for k, t in shown.items()} == {k: [] for k in shown}
    assert shown["repeats"].iloc[0].tolist() == ["1,234", "79", "1,000", "81.0%"]
    assert shown["examples"].loc["Loyal Customers", "share shown it first"] == "21.4%"
    assert shown["second orders"].loc["shoes"].tolist() == ["485", "245", "34.0%"]
