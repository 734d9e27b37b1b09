"""Order lines written in a test, as the cleaning step leaves them (orders_clean's declared columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import artifacts

COLUMNS = artifacts.ARTIFACTS["orders_clean"].columns


def table(con, rows: list[dict], name: str):
    """`rows` (dicts of orders_clean's columns) as the in-memory table `name` of connection `con`, each line
    numbered in `source_row` from 1 and dated to the microsecond, as Parquet holds them."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["source_row"] = np.arange(1, len(df) + 1)
    df["order_date"] = df["order_date"].astype("datetime64[us]")
    return con.create_table(name, df, overwrite=True)
