"""The raw data contract (DESIGN.md, "Raw data contract"): which files and columns a shop provides.

A shop's own export names are translated with the config's column map before these checks run.
"""
from __future__ import annotations

from pathlib import Path

ORDERS_REQUIRED = ("order_id", "customer_id", "order_date", "amount")
ORDERS_OPTIONAL = (
    "quantity", "product_id", "category", "status", "payment_method", "channel",
    "currency", "discount_amount", "coupon_code",
)
CUSTOMERS_REQUIRED = ("customer_id",)
CUSTOMERS_OPTIONAL = ("signup_date", "email", "gender", "birth_year", "region", "marketing_opt_in")
CAMPAIGNS_REQUIRED = ("campaign_id", "customer_id", "sent_date", "arm", "discount")
CAMPAIGNS_OPTIONAL: tuple[str, ...] = ()
SPEND_REQUIRED = ("month", "channel", "spend")  # marketing_spend.csv: what was paid to win customers, per month and channel
SPEND_OPTIONAL: tuple[str, ...] = ()

CONTRACT = {
    "orders": (ORDERS_REQUIRED, ORDERS_OPTIONAL),
    "customers": (CUSTOMERS_REQUIRED, CUSTOMERS_OPTIONAL),
    "campaigns": (CAMPAIGNS_REQUIRED, CAMPAIGNS_OPTIONAL),
    "marketing_spend": (SPEND_REQUIRED, SPEND_OPTIONAL),
}


class ContractError(ValueError):
    """Raw input breaks the data contract. The message is one sentence naming file, column and fix."""


# The forms a raw file may take, tried in this order: Parquet, text (CSV; .txt as Excel saves "Unicode Text"
# or "Text (Tab delimited)"), an Excel workbook (its first sheet, or cleaning.excel_sheet).
RAW_SUFFIXES = (".parquet", ".csv", ".txt", ".xlsx")


def find_file(raw_dir: str | Path, name: str, required: bool) -> Path | None:
    """data/raw/<shop>/<name>.parquet, .csv, .txt or .xlsx (the first found); None for a missing optional file."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise ContractError(
            f"Raw folder {raw_dir} does not exist; put the shop's orders.csv there "
            f"(or run `retention demo --out {raw_dir}` for the demo shop)."
        )
    for suffix in RAW_SUFFIXES:
        p = raw_dir / f"{name}{suffix}"
        if p.exists():
            return p
    if required:
        raise ContractError(
            f"{raw_dir / (name + '.csv')} is missing; the raw data contract needs {name}.csv, {name}.txt, "
            f"{name}.xlsx or {name}.parquet in {raw_dir}."
        )
    return None


def check_columns(file_label: str, kind: str, columns: list[str], column_map: dict[str, str]) -> list[str]:
    """Raise ContractError if a required column is missing after mapping; return present optional columns."""
    required, optional = CONTRACT[kind]
    present = set(columns)
    for col in required:
        if col not in present:
            mapped_from = [k for k, v in column_map.items() if v == col]
            hint = (
                f"the column map sends {mapped_from[0]!r} to it but the file has no {mapped_from[0]!r}"
                if mapped_from
                else f"add it, or map your export's name for it under columns.{kind} in the config"
            )
            raise ContractError(
                f"{file_label}: required column '{col}' is missing ({hint}); columns found: "
                f"{', '.join(columns[:15])}{'...' if len(columns) > 15 else ''}."
            )
    return [c for c in optional if c in present]
