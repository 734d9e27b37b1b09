"""Customer attributes every stage describes the same way: age bands.

Age is counted in the as_of year (as_of year - birth_year); the band edges come from the config
(``kpis.age_bands``, e.g. [25, 35, 45, 55, 65] -> under 25, 25-34, ..., 65+). A customer without a
plausible birth year is ``(unknown)``. One definition, so notebook 02's breakdown, notebook 03's
profiles and notebook 06's look-alike groups use the same bands and labels.
"""
from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

UNKNOWN = "(unknown)"


def age_band_labels(edges) -> list[str]:
    """[25, 35, 65] -> ['under 25', '25-34', '35-64', '65+']."""
    edges = list(edges)
    return [f"under {edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]


def age_band(birth_year: pd.Series, as_of: str, edges) -> pd.Series:
    """Age band of each birth year in the as_of year (pandas; missing -> '(unknown)')."""
    age = int(str(as_of)[:4]) - pd.to_numeric(birth_year, errors="coerce")
    band = pd.cut(age, [-np.inf, *edges, np.inf], right=False, labels=age_band_labels(edges))
    return band.astype("string").fillna(UNKNOWN)


def age_band_expr(birth_year: ir.IntegerValue, as_of: str, edges) -> ir.StringValue:
    """The same bands as an Ibis expression (NULL birth year -> NULL, for the caller to label)."""
    edges = list(edges)
    labels = age_band_labels(edges)
    age = int(str(as_of)[:4]) - birth_year
    return ibis.cases((age.isnull(), ibis.null("string")), (age < edges[0], labels[0]),
                      *[((age >= a) & (age < b), label) for a, b, label in zip(edges[:-1], edges[1:], labels[1:-1])],
                      else_=labels[-1])
