"""Convert the CDNOW transaction log that lifetimes ships into a raw shop folder (orders.csv only).

    .venv/bin/python scripts/cdnow_to_raw.py --out data/raw/cdnow [--source PATH] [--customers N]
    .venv/bin/retention run --raw data/raw/cdnow --as-of 1998-06-30 --config config/cdnow.yml

The source (``lifetimes/datasets/CDNOW_master.txt``; Fader & Hardie's CDNOW master data set: 23,570
customers who made their first purchase in Q1 1997, followed to June 1998) is whitespace-separated
with one purchase a line: customer id, date ``YYYYMMDD``, number of CDs, dollar value. lifetimes'
copy starts with a header line; the original has none (both are read).

Written: ``<out>/orders.csv`` with the raw data contract's four required columns plus ``quantity``::

    order_id,customer_id,order_date,amount,quantity
    00002-19970112-1,00002,1997-01-12,12.00,1
    00002-19970112-2,00002,1997-01-12,77.00,5

There is no order id in the source, so ``order_id`` is ``<customer>-<YYYYMMDD>-<n>``, ``n`` counting the
customer's lines on that day in file order (1, 2, ...): the same source gives the same ids. Customer
ids are kept as written (with their leading zeros). No customers or campaigns file: CDNOW has neither.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HEADER = "order_id,customer_id,order_date,amount,quantity"


def default_source() -> Path:
    """``CDNOW_master.txt`` inside the installed lifetimes package (found without importing lifetimes)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("lifetimes is not installed; pass the CDNOW file with --source PATH.")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"


def convert_lines(lines, customers: int | None = None) -> list[str]:
    """CDNOW source lines -> orders.csv lines (header first).

    ``customers`` keeps only the first that many distinct customer ids in file order (CDNOW is sorted
    by customer, so these are customers 00001..N). Blank lines and a header line are skipped; any
    other line that is not ``id YYYYMMDD quantity amount`` raises ValueError naming its line number.
    """
    out = [HEADER]
    seen_on_day: dict[tuple[str, str], int] = {}
    kept: set[str] = set()
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or (number == 1 and not fields[0].isdigit()):
            continue
        if len(fields) != 4 or not (fields[1].isdigit() and len(fields[1]) == 8):
            raise ValueError(f"line {number} is not 'customer_id YYYYMMDD quantity amount': {line.strip()!r}")
        customer, day, quantity, amount = fields
        if customers is not None and customer not in kept:
            if len(kept) >= customers:
                continue
            kept.add(customer)
        n = seen_on_day[(customer, day)] = seen_on_day.get((customer, day), 0) + 1
        out.append(f"{customer}-{day}-{n},{customer},{day[:4]}-{day[4:6]}-{day[6:]},"
                   f"{float(amount):.2f},{int(quantity)}")
    return out


def convert(source: str | Path, out: str | Path, customers: int | None = None) -> Path:
    """Write ``<out>/orders.csv`` from the CDNOW file ``source``; returns the file written."""
    lines = convert_lines(Path(source).read_text().splitlines(), customers)
    target = Path(out) / "orders.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return target


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="raw shop folder to write orders.csv into, e.g. data/raw/cdnow")
    ap.add_argument("--source", default=None, help="CDNOW_master.txt (default: the copy shipped with lifetimes)")
    ap.add_argument("--customers", type=int, default=None,
                    help="keep only the first N customers (default: all 23,570)")
    args = ap.parse_args(argv)
    source = Path(args.source) if args.source else default_source()
    if not source.is_file():
        raise SystemExit(f"{source} does not exist; pass the CDNOW file with --source PATH.")
    target = convert(source, args.out, args.customers)
    rows = sum(1 for _ in target.open()) - 1
    print(f"{target}: {rows:,} order lines", file=sys.stdout)


if __name__ == "__main__":
    main()
