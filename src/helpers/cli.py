"""The `retention` command: demo data, validation, monthly runs and backfills.

    retention demo --customers 20000 --seed 42 --out data/raw/demo
    retention validate --raw data/raw/myshop [--as-of 2026-06-30] [--config config/myshop.yml] [--preset shopify]
    retention run [--as-of 2026-06-30] [--raw data/raw/myshop] [--config FILE] [--preset P] [--only 01,04]
    retention backfill --from 2026-01 --to 2026-06 [--raw DIR] [--config FILE] [--preset P]

Every failure a user can cause prints one sentence and exits non-zero; no tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings

from helpers import clean, demo, presets, runner
from helpers.artifacts import MissingArtifact
from helpers.config import ConfigError, load_config
from helpers.contract import ContractError
from helpers.paths import resolve
from helpers.runner import RunFailed
from helpers.spark_server import SparkDriverFailed

DEFAULT_RAW = "data/raw/demo"
DEFAULT_CONFIG = "config/default.yml"


def _shop_options(parser: argparse.ArgumentParser, only: bool) -> None:
    """The options that name a shop's files and settings (validate, run, backfill)."""
    parser.add_argument("--raw", default=DEFAULT_RAW, help=f"the shop's raw folder (default {DEFAULT_RAW})")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"settings file (default {DEFAULT_CONFIG})")
    parser.add_argument("--preset", choices=sorted(presets.PRESETS), default=None,
                        help="read a platform's own order export as it comes (sets columns.preset)")
    if only:
        parser.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,04")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="retention", description="Monthly retention analytics for an online shop.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="write a deterministic demo shop in the raw data contract")
    d.add_argument("--customers", type=int, default=20_000, help="buyers to simulate (default 20000)")
    d.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    d.add_argument("--out", default=DEFAULT_RAW, help=f"output folder (default {DEFAULT_RAW})")

    v = sub.add_parser("validate", help="check a shop's raw exports and print the data-quality report; writes nothing")
    v.add_argument("--as-of", default=None, help="cut-off date YYYY-MM-DD (default: no cut-off)")
    _shop_options(v, only=False)
    v.add_argument("--json", action="store_true", help="print the report as JSON")

    r = sub.add_parser("run", help="run the notebooks for one month and publish HTML reports")
    r.add_argument("--as-of", default=None, help="cut-off date YYYY-MM-DD (default: last complete month in the data)")
    _shop_options(r, only=True)

    b = sub.add_parser("backfill", help="run every month in a range, oldest first")
    b.add_argument("--from", dest="month_from", required=True, help="first month YYYY-MM")
    b.add_argument("--to", dest="month_to", required=True, help="last month YYYY-MM")
    _shop_options(b, only=True)

    f = sub.add_parser("refresh-notebooks", help="re-execute notebooks/ in place with their default parameters (make notebooks)")
    f.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 02")
    return p


def _cmd_demo(args) -> int:
    out = resolve(args.out)
    print(f"Generating demo shop: {args.customers:,} customers, seed {args.seed} -> {args.out}")
    truth = demo.generate(out, customers=args.customers, seed=args.seed)
    rows = truth.get("rows", {}).get("orders_csv")
    print(f"Done: {rows:,} order lines written." if rows else "Done.")
    return 0


def _config(args):
    """The config file, with ``columns.preset`` from ``--preset`` when given."""
    cfg = load_config(args.config)
    if getattr(args, "preset", None):
        cfg = cfg.replace(columns=cfg.columns.replace(preset=args.preset))
    return cfg


def _cmd_validate(args) -> int:
    cfg = _config(args)
    report = clean.validate(args.raw, cfg, as_of=args.as_of)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        # loaded here, not at the top: a page brings matplotlib and seaborn, which `retention run` (this process, alive
        # beside every kernel of a month) never needs
        clean_page = importlib.import_module("helpers.pages.clean")
        table = clean_page.accounting_table(report)
        print(table.reset_index().drop(columns=["meaning"]).to_string(index=False))
        print()
        print("\n".join(clean_page.diagnosis(report)))
    if report.get("stop"):
        print(f"retention validate: {report['stop']}", file=sys.stderr)
        return 1
    return 0


def _as_of(args) -> str:
    if args.as_of:
        return args.as_of
    last = clean.latest_order_date(args.raw, _config(args))
    as_of = runner.last_complete_month_end(last)
    print(f"No --as-of given: the data runs to {last}, so the last complete month ends {as_of}.")
    return as_of


def _only(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _cmd_run(args) -> int:
    runner.run_month(_as_of(args), args.raw, args.config, only=_only(args.only), preset=args.preset)
    print("Reports: reports/index.html")
    return 0


def _cmd_backfill(args) -> int:
    first, last = clean.order_date_range(args.raw, _config(args))
    month_from, month_to = args.month_from, args.month_to
    if month_from < first[:7]:  # a month before the first order has nothing to report
        print(f"The data starts {first}: months before {first[:7]} are skipped.")
        month_from = first[:7]
    if month_to > last[:7]:
        print(f"The data ends {last}: months after {last[:7]} are skipped.")
        month_to = last[:7]
    if month_from > month_to:
        raise ValueError(f"no month between {args.month_from} and {args.month_to} has orders (data: {first} to {last}).")
    runner.backfill(month_from, month_to, args.raw, args.config, only=_only(args.only), preset=args.preset)
    print("Reports: reports/index.html")
    return 0


def _cmd_refresh(args) -> int:
    runner.refresh_notebooks(only=_only(args.only))
    return 0


COMMANDS = {"demo": _cmd_demo, "validate": _cmd_validate, "run": _cmd_run, "backfill": _cmd_backfill,
            "refresh-notebooks": _cmd_refresh}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        return COMMANDS[args.command](args)
    except (ContractError, ConfigError, MissingArtifact, RunFailed, SparkDriverFailed, FileNotFoundError,
            ValueError) as exc:
        print(f"retention {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM during a run arrives as runner.Interrupted
        said = (f" by {exc.signal_name}; no half-written file is left, and the month's run.json and "
                f"reports/index.html say the run was interrupted" if isinstance(exc, runner.Interrupted) else "")
        print(f"retention {args.command}: interrupted{said}.", file=sys.stderr)
        return 143 if getattr(exc, "signal_name", None) == "SIGTERM" else 130

if __name__ == "__main__":
    sys.exit(main())
