"""The page of notebook 06 (06_winback.ipynb): which win-back offer pays for whom, and whom to contact.
From a `winback.WinbackResult` it shows the measured uplift of past campaigns (table, figure, takeaway),
how well a per-customer model ranks uplift (Qini), the candidates, the simulated profit of each offer per
segment, the recommended plan and its profit curve, the contact list (summarised, without personal data)
and the control group held back to measure the campaign; the "What to offer" section is
`helpers.pages.offers`, drawn from the result's ``offers``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from helpers import pages, plots
from helpers.winback import (
    EFFECT_WORDS,
    NO_CONTACT,
    REMINDER,
    REVENUE_COLUMNS,
    WinbackResult,
    effect_basis,
    measured_profit,
    option_label,
)


# --------------------------------------------------------------------------- measured uplift of past campaigns

def measured_table(res: WinbackResult) -> pd.DataFrame:
    """The measured uplift for reading: index (campaign, arm, segment), rates in %, a verdict that
    says plainly whether the 95 % interval excludes zero, and revenue per customer in the shop's currency."""
    m, currency = res.measured.copy(), res.currency
    m["verdict"] = np.where(m["uplift_low"] > 0, "more buyers", np.where(m["uplift_high"] < 0, "fewer buyers",
                                                                           "not distinguishable from zero"))
    m["conv_treated"] = (100 * m["conv_treated"]).round(2)
    m["conv_control"] = (100 * m["conv_control"]).round(2)
    for c in ("uplift_pp", "uplift_low", "uplift_high"):
        m[c] = m[c].round(2)
    for c in REVENUE_COLUMNS:
        m[c] = m[c].astype(float).round(2)
    m = m.rename(columns={"conv_treated": "conversion treated %", "conv_control": "conversion control %",
                          "uplift_pp": "uplift pp", "uplift_low": "95% low", "uplift_high": "95% high",
                          "revenue_treated": f"revenue per customer treated ({currency})",
                          "revenue_control": f"revenue per customer control ({currency})",
                          "revenue_uplift": f"revenue uplift per customer ({currency})",
                          "revenue_uplift_low": "revenue 95% low", "revenue_uplift_high": "revenue 95% high",
                          "n_treated": "customers treated", "n_control": "customers in control"})
    m["discount"] = [plots.format_cell(d, "share0") for d in m["discount"]]
    for c in ("customers treated", "customers in control"):
        m[c] = [plots.format_cell(n, "count") for n in m[c]]
    m["arm"] = m["arm"].map(_arm)
    m = plots.for_readers(m.set_index(["campaign_id", "arm", "segment"]), {"campaign_id": "campaign"})
    return plots.long_table(m, "winback-measured")


def _arm(name) -> str:
    """The shop's arm name as words: discount_10 -> discount 10."""
    return str(name).replace("_", " ")


def pending_sentence(res: WinbackResult) -> str:
    """'Campaign X (sent D) is still inside its N-day response window and is measured from M', or ''."""
    p = res.pending
    if p is None or p.empty:
        return ""
    said = "; ".join(f"{r.campaign_id} (sent {r.sent_date}) is measured from the run of {r.measured_from}"
                     for r in p.itertuples())
    return f"Still inside the {res.window_days}-day response window, so not measured yet: {said}"


def measured_takeaway(res: WinbackResult) -> str:
    measured, window_days = res.measured, res.window_days
    if measured.empty:
        pending = pending_sentence(res)
        return (f"{pending}. Until then the simulation uses the configured uplift assumptions only." if pending else
                "No past campaign with a control arm: the simulation uses the configured uplift assumptions only.")
    a = measured[measured["segment"] == "all"]
    parts = []
    for _, r in a.iterrows():
        clear = "clearly above zero" if r["uplift_low"] > 0 else (
            "clearly below zero" if r["uplift_high"] < 0 else "not distinguishable from zero")
        parts.append(f"{r['campaign_id']} {_arm(r['arm'])} ({option_label(r['discount'])}): {r['conv_treated']:.1%} bought "
                     f"within {window_days} days vs {r['conv_control']:.1%} in control, uplift {r['uplift_pp']:+.1f} pp "
                     f"(95% {r['uplift_low']:+.1f} to {r['uplift_high']:+.1f}), {clear}.")
    seg = measured[(measured["segment"] != "all") & (measured["uplift_low"] <= 0) & (measured["uplift_high"] >= 0)]
    if not seg.empty:
        names = sorted(set(seg["segment"]))
        parts.append("Not distinguishable from zero in at least one arm: " + ", ".join(names) + ".")
    n_seg = int((measured["segment"] != "all").sum())
    if n_seg >= 5:
        parts.append(f"Each interval is 95% on its own: of these {n_seg:,} segment intervals about {0.05 * n_seg:.1f} are "
                     "expected to miss the true uplift by chance, so one segment that stands out alone is a lead to "
                     "re-test in the next campaign rather than a finding.")
    if pending_sentence(res):
        parts.append(pending_sentence(res) + ".")
    return "\n".join(parts)


def plot_measured(res: WinbackResult, ax=None):
    """Uplift (pp) with 95 % intervals per arm and segment, one marker colour per arm."""
    measured = res.measured
    ax = plots.axes_or_new(ax)
    if measured.empty:
        ax.text(0.5, 0.5, "no measured campaign", ha="center", va="center")
        ax.set_axis_off()
        return ax
    m = measured.copy()
    m["label"] = m["segment"]
    segs = ["all"] + sorted(s for s in set(m["segment"]) if s != "all")
    m = m.assign(arm=m["arm"].map(_arm))
    arms = list(dict.fromkeys(m["campaign_id"] + " " + m["arm"]))
    colors = plots.sns.color_palette("deep", len(arms))
    width = 0.7 / max(1, len(arms))
    for k, key in enumerate(arms):
        d = m[(m["campaign_id"] + " " + m["arm"]) == key].set_index("segment").reindex(segs)
        y = np.arange(len(segs)) + (k - (len(arms) - 1) / 2) * width
        ax.errorbar(d["uplift_pp"], y, xerr=[d["uplift_pp"] - d["uplift_low"], d["uplift_high"] - d["uplift_pp"]],
                    fmt="o", color=colors[k], capsize=3, label=f"{key} ({option_label(d['discount'].dropna().iloc[0])})")
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(segs)), segs)
    ax.invert_yaxis()
    ax.set_title("Measured uplift per arm and segment (95% interval)")
    ax.set_xlabel("uplift in conversion within the window (percentage points)")
    ax.set_ylabel("")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True, fontsize=9)  # beside: no marker hidden
    return ax


# --------------------------------------------------------------------------- per-customer uplift model (Qini)

def qini_table(res: WinbackResult) -> pd.DataFrame:
    models = res.models
    t = models.areas.copy()
    if t.empty:
        return plots.note_table(models.note or "no model", "-", "arm")
    return plots.table_for_readers(
        t, {"auuc": "number1", "random": "number1", "qini_coefficient": "number1", "n_holdout": "count"},
        names={"auuc": "area under Qini (model)", "random": "area (random targeting)",
               "qini_coefficient": "Qini coefficient (model - random)", "n_holdout": "held-out customers"})


def qini_takeaway(res: WinbackResult) -> str:
    models = res.models
    if models.areas.empty:
        return models.note
    parts = [models.note]
    for arm, r in models.areas.iterrows():
        verdict = "ranks better than random targeting" if r["qini_coefficient"] > 0 else "does not beat random targeting"
        parts.append(f"{arm}: the model {verdict} (Qini coefficient {r['qini_coefficient']:+.1f} incremental buyers"
                     f" of area; random {r['random']:.1f}).")
    parts.append("The plan below uses segment-level measured uplift with its intervals; the per-customer model "
                 "only shows how well uplift can be ranked.")
    return " ".join(parts)


def plot_qini(res: WinbackResult, ax=None):
    """Qini curves on held-out customers (one per arm) against random targeting."""
    models = res.models
    ax = plots.axes_or_new(ax)
    colors = plots.sns.color_palette("deep", max(1, len(models.curves)))
    for k, (arm, c) in enumerate(models.curves.items()):
        x = 100 * c["n"] / c["n"].iloc[-1]
        ax.plot(x, c["qini"], color=colors[k], label=f"{arm}: T-learner")
        ax.plot(x, c["random"], color=colors[k], ls="--", lw=1, label=f"{arm}: random targeting")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title("Qini curve on held-out campaign customers")
    ax.set_xlabel("customers targeted, highest predicted uplift first (%)")
    ax.set_ylabel("incremental buyers (scaled to treated)")
    if models.curves:
        ax.legend(loc="upper left", frameon=True, fontsize=9)
    return ax


# --------------------------------------------------------------------------- candidates, simulation, plan

def candidates_table(res: WinbackResult) -> pd.DataFrame:
    """Win-back candidates per segment: how many, how many via a risk tier only and can be contacted,
    their mean chance of an order in the window without contact and their mean order value."""
    cands, currency = res.candidates, res.currency
    g = cands.groupby("segment")
    out = pd.DataFrame({"candidates": g.size(), "via risk tier only": g["reason"].apply(lambda r: int((r != "segment").sum())),
                        **({"can be contacted": g["contactable"].sum().astype(int)} if "contactable" in cands else {}),
                        "mean P(order in window)": g["p_baseline"].mean(),
                        "mean order value": g["order_value"].mean()})
    out.index.name = "segment"
    out = out.sort_values("candidates", ascending=False)
    return plots.table_for_readers(out, {"candidates": "count", "via risk tier only": "count", "can be contacted": "count",
                                         "mean P(order in window)": "share", "mean order value": "money2"}, currency)


def _band(low, high, digits: int = 0) -> str:
    return f"{low:,.{digits}f} to {high:,.{digits}f}"


def _simulated(res: WinbackResult) -> pd.DataFrame:
    """Every segment and option over the customers who can be contacted (`options`; the plan without it)."""
    return res.plan if res.options is None else res.options


def simulation_table(res: WinbackResult) -> pd.DataFrame:
    """The simulation for reading, index (segment, option): uplift with its 95 % interval, money in
    whole units with the 5-95 % profit band, ROI in %, the recommendation and where the uplift came
    from. The unrounded numbers are in winback_plan.csv."""
    p, c = _simulated(res), res.currency
    assumed = [effect_basis(x) == "assumed" for x in p["uplift_source"]]  # an assumption has no interval of its own
    out = pd.DataFrame({
        "segment": p["segment"], "option": p["option"],
        "customers": p["n_customers"].map("{:,.0f}".format),
        "uplift pp (95%)": [f"{u:.1f} (assumed)" if guess else f"{u:.1f} ({_band(lo, hi, 1)})" for u, lo, hi, guess in
                            zip(p["uplift_pp"], p["uplift_low"], p["uplift_high"], assumed)],
        "extra buyers": p["incremental_buyers"].map("{:,.0f}".format),
        f"extra revenue ({c})": p["incremental_revenue"].map("{:,.0f}".format),
        f"discount cost ({c})": p["discount_cost"].map("{:,.0f}".format),
        f"extra profit ({c})": p["incremental_profit"].map("{:,.0f}".format),
        f"profit 5-95% ({c})": [_band(lo, hi) for lo, hi in zip(p["profit_p05"], p["profit_p95"])],
        "ROI": [f"{100 * r:.0f}%" if pd.notna(r) else plots.MISSING for r in p["roi"]],
        "recommended": np.where(p["recommended"], "yes", ""),
        "uplift from": p["uplift_source"],
    })
    return plots.long_table(out.set_index(["segment", "option"]), "winback-simulation")


def plot_simulation(res: WinbackResult, ax=None):
    """Expected incremental profit per segment and option with the 5-95 % Monte Carlo band."""
    the_plan, currency = _simulated(res), res.currency
    ax = plots.axes_or_new(ax)
    p = the_plan[the_plan["option"] != NO_CONTACT]
    segs = sorted(set(p["segment"]))
    opts = list(dict.fromkeys(p["option"]))
    colors = plots.option_colors(opts, REMINDER)
    width = 0.8 / max(1, len(opts))
    chosen = set(zip(the_plan.loc[the_plan["recommended"], "segment"], the_plan.loc[the_plan["recommended"], "option"]))
    for k, o in enumerate(opts):
        d = p[p["option"] == o].set_index("segment").reindex(segs)
        x = np.arange(len(segs)) + (k - (len(opts) - 1) / 2) * width
        bars = ax.bar(x, d["incremental_profit"], width=width, color=colors[k], label=o)
        assumed = np.array([effect_basis(v) == "assumed" for v in d["uplift_source"].fillna("")])
        for bar, seg, guess in zip(bars, segs, assumed):
            if guess:  # an assumed effect: hatched, and no band of its own
                bar.set_hatch("///")
            if (seg, o) in chosen:  # the offer the plan sends this segment
                bar.set_edgecolor("black")
                bar.set_linewidth(1.8)
        # the expected profit (exact) can lie outside a band of few draws (winback.draws): no negative bar
        low = (d["incremental_profit"] - d["profit_p05"]).clip(lower=0).where(~assumed, 0)
        high = (d["profit_p95"] - d["incremental_profit"]).clip(lower=0).where(~assumed, 0)
        ax.errorbar(x, d["incremental_profit"], yerr=[low, high], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.axhline(0, color="grey", lw=1)
    ax.set_xticks(range(len(segs)), segs, rotation=30, ha="right")
    ax.set_title("Simulated incremental profit per segment and offer (5-95% band)")
    ax.set_ylabel(f"incremental profit ({currency})")
    ax.set_xlabel("")
    ax.yaxis.set_major_formatter(plots.thousands)
    if opts:
        # one plain swatch per offer (the first bar of a colour may be outlined or hatched), then the two marks
        handles = [Patch(facecolor=col) for col in colors]
        handles += [Patch(facecolor="white", edgecolor="black", linewidth=1.8),
                    Patch(facecolor="white", edgecolor="grey", hatch="///")]
        labels = [*opts, "the plan's offer (outlined)", "assumed effect (hatched, no band)"]
        ax.legend(handles, labels, title="offer", fontsize=10, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=True)
    else:  # no candidate or no contact option (settings): say so instead of an empty legend's warning
        ax.text(0.5, 0.5, "no offer simulated", ha="center", va="center", transform=ax.transAxes)
    return ax


def plan_table(res: WinbackResult) -> pd.DataFrame:
    """One row per segment: the recommended option, its customers, expected extra profit and band."""
    p, c = res.plan[res.plan["recommended"]].set_index("segment"), res.currency
    out = pd.DataFrame({"offer": p["option"], "customers": p["n_customers"],
                        "extra buyers": p["incremental_buyers"],
                        "extra profit": p["incremental_profit"],
                        "profit 5%": p["profit_p05"], "profit 95%": p["profit_p95"],
                        "effect": [effect_basis(x) if o != NO_CONTACT else "" for x, o in zip(p["uplift_source"], p["option"])]})
    assumed = out["effect"] == "assumed"  # an assumption carries no interval of its own
    out[["profit 5%", "profit 95%"]] = out[["profit 5%", "profit 95%"]].where(~assumed, np.nan)
    out = out.sort_values("extra profit", ascending=False)
    return plots.table_for_readers(out, {"customers": "count", "extra buyers": "number1", "extra profit": "money",
                                         "profit 5%": "money", "profit 95%": "money"}, c)


def plan_takeaway(res: WinbackResult) -> str:
    """The plan in a few sentences, after the notes on what is missing this month (only those when there is
    no candidate because of it)."""
    if res.notes and res.candidates.empty:
        return " ".join(res.notes)
    return " ".join(res.notes + [_plan_sentences(res.plan, res.currency, res.plan_loss)])


def _plan_sentences(the_plan: pd.DataFrame, currency: str, loss: float | None) -> str:
    p = the_plan[the_plan["recommended"]]
    offer = p[p["option"] != NO_CONTACT]
    none = p[p["option"] == NO_CONTACT]
    if p.empty:
        return "No candidates."
    parts = [f"The plan: {int(offer['n_customers'].sum()):,} customers on the contact list (winback_targets.csv), "
             f"expected extra profit {plots.money(offer['incremental_profit'].sum(), currency)}. Per segment it counts "
             "the customers who can be contacted (marketing consent, not contacted lately) and whose own expected "
             "profit is positive; the simulation above counts every contactable customer of the segment."]
    if loss is not None:
        parts[0] += f" The whole plan loses money with a chance of about {loss:.0%}."
    if not offer.empty:
        parts.append("Offer: " + "; ".join(f"{r.segment} {r.option} to {int(r.n_customers):,} customers (expected "
                                           f"{plots.money(r.incremental_profit, currency)},"
                                           f" 5-95% {r.profit_p05:,.0f} to {r.profit_p95:,.0f})" for r in offer.itertuples()) + ".")
        risky = offer[offer["profit_p05"] < 0]
        if not risky.empty:
            parts.append("Could still lose money (5% band below zero): " + ", ".join(risky["segment"]) + ".")
    if not none.empty:
        parts.append("No offer pays in expectation for: " + ", ".join(none["segment"]) + ".")
    assumed = the_plan[(the_plan["recommended"]) & the_plan["uplift_source"].str.startswith("assumed")]
    if not assumed.empty:
        parts.append("Recommendations resting on configured (not measured) uplift: " + ", ".join(assumed["segment"]) + ".")
    return "\n".join(parts)


# --------------------------------------------------------------------------- profit curve and contact list

def plot_profit_curve(res: WinbackResult, ax=None):
    """Cumulative expected incremental profit by number of customers contacted (best first)."""
    c, currency = res.curve, res.currency
    ax = plots.axes_or_new(ax)
    ax.plot(c["customers"], c["profit"], color=plots.sns.color_palette()[0], label="customers by expected profit")
    if len(c):
        k = int(c["profit"].idxmax())
        ax.scatter([c.loc[k, "customers"]], [c.loc[k, "profit"]], color=plots.sns.color_palette()[3], zorder=3,
                   label=f"best depth: {int(c.loc[k, 'customers']):,} customers")
        if not c["within_budget"].all():
            b = int(c["within_budget"].sum())
            ax.axvline(b, color="grey", ls="--", lw=1, label=f"budget cap: {b:,} customers")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title("Profit curve by targeting depth")
    ax.set_xlabel("customers contacted (highest expected profit first)")
    ax.set_ylabel(f"cumulative expected incremental profit ({currency})")
    ax.xaxis.set_major_formatter(plots.thousands)
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(loc="lower left", frameon=True)
    return ax


def curve_table(res: WinbackResult, points: int = 8) -> pd.DataFrame:
    """The profit curve at a few depths (share of candidates), plus the best depth."""
    c, currency = res.curve, res.currency
    if c.empty:
        return pd.DataFrame(columns=["customers", "expected profit", "expected spend"])
    idx = sorted({max(0, int(round(q * len(c))) - 1) for q in np.linspace(0, 1, points + 1)[1:]} | {int(c["profit"].idxmax())})
    out = c.loc[idx, ["customers", "profit", "spend"]]
    out.index = [f"{r.customers / len(c):.0%} of candidates" + (" (best)" if i == c["profit"].idxmax() else "")
                 for i, r in zip(idx, out.itertuples())]
    out.index.name = "depth"
    return plots.table_for_readers(out, {"customers": "count", "profit": "money", "spend": "money"}, currency,
                                   names={"profit": f"expected profit ({currency})", "spend": f"expected spend ({currency})"})


def curve_takeaway(res: WinbackResult) -> str:
    """The best depth is the plan: the customers on the contact list and their expected profit; with a
    control group held back (the result's `control`), the plan contacts the rest of them (`targets`)."""
    c, currency, control, targets = res.curve, res.currency, res.control, res.targets
    if c.empty:
        return "No customer who can be contacted is in a segment with an offer."
    k = int(c["profit"].idxmax())
    if c.loc[k, "profit"] <= 0:
        return "No customer who can be contacted is expected to bring more profit than the offer costs."
    s = (f"Of the {len(c):,} customers who can be contacted in the segments with an offer, contacting the best "
         f"{int(c.loc[k, 'customers']):,} maximises expected profit at {plots.money(c.loc[k, 'profit'], currency)}")
    if control is not None and control.n_control and targets is not None:
        s += (f"; {control.n_control:,} of them are held back at random as a control group, so the plan contacts "
              f"{len(targets):,} for {plots.money(targets['expected_incremental_profit'].sum(), currency)}: that is "
              "its contact list")
    else:
        s += ": that is the plan and its contact list"
    return s + f"; contacting all {len(c):,} would yield {plots.money(c['profit'].iloc[-1], currency)}."


def targets_summary(res: WinbackResult) -> pd.DataFrame:
    """The contact list without personal data: customers and expected profit per segment and offer."""
    t, currency = res.targets, res.currency
    if t.empty:
        return pd.DataFrame({"customers": [0]}, index=pd.Index(["(none)"], name="segment"))
    g = t.assign(offer=t["discount"].map(option_label)).groupby(["segment", "offer"])
    out = pd.DataFrame({"customers": g.size(), "expected profit": g["expected_incremental_profit"].sum()})
    return plots.table_for_readers(out, {"customers": "count", "expected profit": "money"}, currency,
                                   sortable="winback-targets")


def targets_takeaway(res: WinbackResult) -> str:
    """What winback_targets.csv holds (the contact list, never shown) and who is left out and why."""
    t, currency = res.targets, res.currency
    budget = "" if res.curve["within_budget"].all() else " The budget cap limits the list."
    capped = ("" if res.offers is None else f" and {res.n_capped:,} because they were contacted in the last "
              f"{res.offers.cfg.min_days_between_contacts} days")
    return (f"winback_targets.csv lists the plan's {len(t):,} customers (expected incremental profit "
            f"{plots.money(t['expected_incremental_profit'].sum() if len(t) else 0, currency)}), all with marketing "
            f"consent. Of the candidates, {res.n_without_consent:,} are left out for lack of consent{capped}.{budget} "
            "The file holds e-mail addresses and stays in the processed folder; it is not shown here.")


# --------------------------------------------------------------------------- control group

def _pct(share: float) -> str:
    """0.8 -> '80%', 0.995 -> '99.5%' (a power or alpha near 100 % or 0 % is not rounded onto it)."""
    return f"{share:.1%}".replace(".0%", "%")


def control_table(res: WinbackResult) -> pd.DataFrame:
    """The split and the power calculation for reading, one row per figure."""
    group = res.control
    if group is None:
        return pd.DataFrame({"value": ["no plan this month"]}, index=pd.Index(["control group"], name=""))
    rows = [("customers contacted (offer)", f"{group.n_treated:,}"),
            ("customers held back (control group)", f"{group.n_control:,}"),
            (f"base conversion (buy within {group.window_days} days)", f"{group.base_conversion:.1%}"),
            ("where the base conversion comes from", group.base_source),
            ("uplift to detect (configured)", f"{100 * group.min_detectable_uplift:.1f} pp"),
            (f"chance to detect it (power; {_pct(group.alpha)} false alarms)", _pct(group.achieved_power)),
            (f"uplift this split detects with {_pct(group.power)} power",
             plots.MISSING if not np.isfinite(group.detectable_uplift) else f"{100 * group.detectable_uplift:.1f} pp")]
    return pd.DataFrame({"value": [v for _, v in rows]}, index=pd.Index([k for k, _ in rows], name=""))


def control_takeaway(res: WinbackResult) -> str:
    group = res.control
    if group is None or group.n_treated + group.n_control == 0:
        return "Nobody is on the contact list, so no campaign and no control group are planned this month."
    if group.n_control == 0:
        return (f"No control group is held back (winback.control_max_share allows none of {group.n_treated:,} "
                "customers): the campaign's effect cannot be measured afterwards.")
    s = (f"campaign_plan.csv ({group.campaign_id}) holds the {group.n_treated:,} customers to contact and a randomized "
         f"control group of {group.n_control:,} who get nothing; the contact counts on this page leave the control "
         f"group out. With a base conversion of {group.base_conversion:.1%}, ")
    if np.isfinite(group.detectable_uplift):
        s += (f"the campaign will detect an uplift of {100 * group.detectable_uplift:.1f} percentage points or more "
              f"with {_pct(group.power)} probability")
    else:
        s += "the list is too small for the campaign to detect any uplift reliably"
    if group.achieved_power + 1e-9 < group.power:
        s += (f"; the configured {100 * group.min_detectable_uplift:.1f} points would be found only with "
              f"{_pct(group.achieved_power)} probability (the list is too small for more)")
    return s + ". After sending, append campaign_plan.csv (with the real send date) to the shop's campaigns.csv."


# --------------------------------------------------------------------------- the answer, box, glossary

def answer(res: WinbackResult) -> str:
    """The page's answer: whom to contact with which offer and what it should bring, how much of that rests
    on measured effects, and - when nobody can be contacted - why, and what the offers would bring with consent."""
    if res.notes and res.candidates.empty:
        return " ".join(res.notes)
    p = res.plan[res.plan["recommended"]]
    offer = p[(p["option"] != NO_CONTACT) & (p["n_customers"] > 0)]
    cur = res.currency
    if offer.empty:
        contactable = bool(res.candidates["contactable"].any()) if "contactable" in res.candidates else False
        if contactable:
            return "No offer is expected to pay for itself in any segment this month: send no win-back discounts."
        opt = res.options[res.options["recommended"] & (res.options["option"] != NO_CONTACT)] if res.options is not None else p.iloc[:0]
        text = (f"Nobody can be sent an offer this month: of the {len(res.candidates):,} candidates, "
                f"{res.n_without_consent:,} have no marketing consent on record and {res.n_capped:,} were contacted "
                "lately.")
        if len(opt) and opt["incremental_profit"].sum() > 0:
            text += (f" If you had their consent, the offers that pay would reach {int(opt['n_customers'].sum()):,} of "
                     f"them for an expected extra profit of {plots.money(opt['incremental_profit'].sum(), cur)} (the "
                     "simulation below); collect consent at checkout or in the customer account.")
        return text
    basis = offer["uplift_source"].map(effect_basis)
    measured = measured_profit(offer)
    total = float(offer["incremental_profit"].sum())
    text = (f"Send the win-back offers to {int(offer['n_customers'].sum()):,} customers in {len(offer)} segment(s) "
            f"(the list with e-mails: winback_targets.csv): expected extra profit {plots.money(total, cur)}")
    if res.plan_band is not None:
        text += f" (5-95 %: {plots.money(res.plan_band[0], cur)} to {plots.money(res.plan_band[1], cur)})"
    text += (f"; {plots.money(measured, cur)} of it rests on effects measured in past campaigns, "
             f"{plots.money(total - measured, cur)} on interpolated or assumed ones.")
    assumed = offer.loc[basis == "assumed", "segment"].tolist()
    if assumed:
        text += f" Assumed, not measured: {', '.join(assumed)} - test these before trusting them."
    if res.control is not None and res.control.n_control:
        text += (f" A randomized control group of {res.control.n_control:,} customers is held back, so the next "
                 "months can measure what the campaign did.")
    return text


def rests_on(res: WinbackResult, cfg) -> pages.RestsOn:
    """The settings the plan's money is computed with, and how many of its offers were measured."""
    p = res.plan[res.plan["recommended"] & (res.plan["option"] != NO_CONTACT)]
    note = pages.effects_note([effect_basis(x) for x in p["uplift_source"]])
    return pages.rests_on(cfg, ["clv.gross_margin", "winback.contact_cost", "winback.window_days",
                                "winback.assumed_uplift", "offers.min_days_between_contacts"], note)


def glossary_table(res: WinbackResult) -> pd.DataFrame:
    """The page's terms and settings."""
    return pages.glossary({
        "uplift": "extra buyers an offer brings: the treated group's conversion minus the control group's, in "
                  "percentage points (pp)",
        **{f"effect: {k}": v for k, v in EFFECT_WORDS.items()},
        "Newcombe interval": "the 95 % interval of a difference of two conversion rates (Newcombe 1998, hybrid "
                             "score), which holds at low rates",
        "T-learner, Qini": "two models (with and without the offer) whose difference predicts a customer's uplift; "
                           "the Qini curve counts the extra buyers when the highest predicted uplift goes first",
        "candidates": "customers in the watched segments or churn tiers (winback.candidate_segments, "
                      "winback.candidate_risk_tiers)",
        "5-95 % band": "the range of the profit in 90 of 100 simulated campaigns (winback.draws draws)",
        "budget": "winback.budget caps the spend when set",
        "control group": "its size detects winback.control_min_detectable_uplift with winback.control_power, at most "
                         "winback.control_max_share of the list",
        "affinities": "offers.affinity_window_days, offers.min_support and offers.min_lift decide which pairs of "
                      "categories count",
        "suggested_categories": "winback_targets.csv's column of categories to show, best first",
        "offers' horizon": "offers.horizon_days: how far ahead suggestions look, and how far back they are judged",
    })
