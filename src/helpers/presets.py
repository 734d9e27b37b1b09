"""Shop platform exports read as the raw data contract: ``columns.preset: shopify | woocommerce``.

A preset turns a platform's order export, exactly as the shop downloads it, into the contract's
order lines (all text, like any raw file) before the cleaning rules run, so every rule, the row
accounting and the quarantine work as for any shop. It knows, per platform:

- which files hold the orders (:attr:`Preset.files`; Shopify splits a large export into
  ``orders_export_1.csv``, ``orders_export_2.csv``, ... - read as one table, each with its header);
- which order-level fields the export writes on an order's first row only (:attr:`Preset.order_level`);
  a blank one on a later row is carried over from the order's other rows;
- who the customer is (:class:`Identity`): the platform's customer id when it has one, else a keyed
  hash of the trimmed, lower-cased e-mail, so one person is one customer across orders and months
  while the address itself goes only to customers_clean (and from there to consented target lists);
- its statuses in ours (:data:`STATUS_WORDS`): ``completed`` (kept), ``cancelled``, ``unpaid`` and
  ``refunded_in_full`` (excluded by the rules of those names);
- the line revenue: Shopify's line prices scaled so that an order's lines add up to its Subtotal
  (after discounts, before shipping; with VAT where the shop's prices include it), WooCommerce's
  ``item_total`` (or, one row per order, the order total less shipping and taxes); a refund the export gives per order without a date
  (Shopify's Refunded Amount, WooCommerce's refunded_total) is netted on the order's own date, in
  proportion to the order total. Amounts are split in whole cents, so an order's lines add up exactly.

Besides the contract columns the table keeps ``email``, ``_consent`` and ``_region`` (:data:`PRIVATE`),
from which the cleaning step builds customers_clean; they never reach the quarantine or orders_clean.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir

from helpers import engine
from helpers.contract import ContractError

# Our statuses, as the cleaning rules read them (cleaning.*_statuses hold the generic words).
COMPLETED, CANCELLED, UNPAID, REFUNDED_IN_FULL = "completed", "cancelled", "unpaid", "refunded_in_full"
PRIVATE = ("email", "_consent", "_region")  # for customers_clean only
_YES = ("yes", "true", "1", "y", "subscribed", "opted_in")


@dataclass(frozen=True)
class Preset:
    name: str
    label: str  # the export, as a user knows it
    files: tuple[str, ...]  # file-name patterns of the order export, tried in this order
    needs: tuple[tuple[str, ...], ...]  # columns without which the export cannot be read (each: one of these names)
    order_id: str
    order_level: tuple[str, ...]
    statuses: dict[str, str]  # the platform's status -> ours; others pass through as they are
    refund_note: str  # what 01 says about refunds
    reads: dict[str, str]  # export column -> what it becomes (`retention validate` shows it)
    consent_note: str = ""  # where marketing consent comes from, when the export has none


SHOPIFY = Preset(
    name="shopify",
    label="Shopify order export",
    files=("orders_export.csv", "orders_export_*.csv"),
    needs=(("Name",), ("Email",), ("Created at",), ("Lineitem quantity",), ("Lineitem price",)),
    order_id="Name",
    order_level=("Email", "Financial Status", "Paid at", "Accepts Marketing", "Currency", "Subtotal", "Shipping",
                 "Taxes", "Total", "Discount Code", "Discount Amount", "Created at", "Cancelled at",
                 "Payment Method", "Refunded Amount", "Billing Province", "Billing Country", "Source"),
    statuses={"paid": COMPLETED, "partially_refunded": COMPLETED, "authorized": COMPLETED,
              "partially_paid": COMPLETED, "refunded": REFUNDED_IN_FULL, "voided": CANCELLED,
              "expired": CANCELLED, "pending": UNPAID},
    reads={"Name": "order_id", "Email": "customer_id (keyed hash) and email (customers_clean only)",
           "Created at": "order_date", "Financial Status": "status", "Cancelled at": "status (cancelled)",
           "Lineitem price": "amount (price x quantity, scaled to the Subtotal)", "Lineitem quantity": "quantity",
           "Subtotal": "amount (order revenue after discounts)", "Total": "amount (refund share)",
           "Refunded Amount": "amount (netted on the order date)", "Lineitem discount": "amount (without Subtotal)",
           "Lineitem sku": "product_id", "Lineitem name": "product_id (without a SKU)",
           "Payment Method": "payment_method", "Source": "channel", "Currency": "currency",
           "Discount Code": "coupon_code", "Accepts Marketing": "marketing_opt_in (latest order)",
           "Billing Province": "region", "Billing Country": "region (without a province)"},
    refund_note=("Shopify's Refunded Amount has no date: each refund is netted on its order's date, in proportion "
                 "to the order's Total (an order refunded in full is excluded, rule refunded_in_full)."),
)
WOOCOMMERCE = Preset(
    name="woocommerce",
    label="WooCommerce Customer / Order / Coupon Export (Default or Default - One Row per Item)",
    files=("orders-export-*.csv", "orders_export*.csv", "orders-*.csv"),
    needs=(("order_id",), ("date", "order_date"), ("order_total",)),
    order_id="order_id",
    order_level=("date", "order_date", "status", "order_total", "refunded_total", "order_currency", "payment_method",
                 "customer_id", "billing_email", "billing_state", "billing_country", "coupon_items",
                 "shipping_total", "shipping_tax_total", "tax_total", "discount_total"),
    statuses={"completed": COMPLETED, "processing": COMPLETED, "refunded": REFUNDED_IN_FULL,
              "cancelled": CANCELLED, "pending": UNPAID, "on-hold": UNPAID, "failed": UNPAID},
    reads={"order_id": "order_id", "customer_id": "customer_id (0 = guest)",
           "billing_email": "customer_id of guests (keyed hash) and email (customers_clean only)",
           "date": "order_date", "order_date": "order_date", "status": "status", "item_total": "amount (one row per item)",
           "order_total": "amount (one row per order: less shipping and taxes; refund share)",
           "shipping_total": "amount (one row per order)", "tax_total": "amount (one row per order; it holds the shipping tax)", "refunded_total": "amount (netted on the order date)",
           "item_subtotal": "discount_amount", "discount_total": "discount_amount (one row per order)",
           "item_quantity": "quantity", "item_sku": "product_id", "item_name": "product_id (without a SKU)",
           "order_currency": "currency", "payment_method": "payment_method", "coupon_items": "coupon_code",
           "billing_state": "region", "billing_country": "region (without a state)"},
    consent_note=("The export has no marketing consent: nobody is on a target list until a customers.csv beside it "
                  "gives marketing_opt_in per email (or customer_id), e.g. from the newsletter tool."),
    refund_note=("WooCommerce's refunded_total is read per order: each refund is netted on its order's date, in "
                 "proportion to the order total (an order refunded in full is excluded, rule refunded_in_full)."),
)
PRESETS = {p.name: p for p in (SHOPIFY, WOOCOMMERCE)}


def get(name: str | None) -> Preset | None:
    if name is None:
        return None
    if name not in PRESETS:
        raise ContractError(f"unknown preset {name!r}; the presets are {', '.join(PRESETS)}.")
    return PRESETS[name]


def _natural(p: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", p.name))


def order_files(raw_dir: Path, preset: Preset) -> list[Path]:
    """The export's order files in raw_dir: ``orders.csv``/``.parquet`` if present, else the platform's own
    names (``orders_export_1.csv``, ``orders_export_2.csv``, ... in numeric order); [] if none."""
    for name in ("orders.parquet", "orders.csv"):
        if (raw_dir / name).is_file():
            return [raw_dir / name]
    for pattern in preset.files:
        found = sorted((p for p in raw_dir.glob(pattern) if p.is_file()), key=_natural)
        if found:
            return found
    return []


class Identity:
    """Customer ids from e-mails: ``e:`` + the first 20 hex digits of SHA-256(key + normalised e-mail).

    The key (:func:`helpers.artifacts.identity_key`) is made once per shop and kept beside its processed
    data, so ids stay the same across months, and the e-mail cannot be recovered from an id by hashing
    guessed addresses without the key.
    """

    def __init__(self, key: str):
        self.key = key

    @staticmethod
    def normalise(email: ir.StringValue) -> ir.StringValue:
        return engine.trim(email).lower().nullif("")

    def of(self, email: ir.StringValue) -> ir.StringValue:
        norm = self.normalise(email)
        return ibis.literal("e:") + (ibis.literal(self.key + ":") + norm).hexdigest("sha256").left(20)


def _text(s: ir.StringValue) -> ir.StringValue:
    return engine.trim(s).nullif("")


def _number(s: ir.StringValue) -> ir.FloatingValue:
    """A platform's number: '12.50', '1,234.50' (both platforms export a dot decimal)."""
    return _text(s).replace(",", "").try_cast("float64")


def _money_text(cents: ir.IntegerValue) -> ir.StringValue:
    """Whole cents as an exact decimal text: -1234 -> '-12.34'."""
    a = cents.abs()
    sign = (cents < 0).ifelse("-", "")
    return sign + (a // 100).cast("int64").cast("string") + "." + (a % 100).cast("string").lpad(2, "0")


def _split_cents(t: ir.Table, order_cents: str, weight: str, out: str) -> ir.Table:
    """Column `out`: the order's `order_cents` split over its lines by `weight`, whole cents, the rounding
    rest on the order's first line, so the lines add up exactly. (Steps: no window inside a window.)"""
    w = ibis.window(group_by="_oid")
    t = t.mutate(_tw=t[weight].sum().over(w), _n=t.count().over(w), _first=t.source_row.min().over(w))
    share = (t._tw > 0).ifelse(t[weight] / t._tw, 1.0 / t._n)
    t = t.mutate(_r=(t[order_cents] * share).round().cast("int64"))
    t = t.mutate(_rest=t[order_cents] - t._r.sum().over(w))
    t = t.mutate(**{out: (t.source_row == t._first).ifelse(t._r + t._rest, t._r)})
    return t.drop("_tw", "_n", "_first", "_r", "_rest")


def _carried(t: ir.Table, preset: Preset) -> ir.Table:
    """``_oid`` and the export's columns trimmed (blank = NULL), an order-level blank on a later row filled
    from the order's rows that have it."""
    t = t.mutate(_oid=_text(t[preset.order_id]))
    w = ibis.window(group_by="_oid")
    filled = {}
    for name in preset.order_level:
        if name in t.columns:
            v = _text(t[name])
            filled[name] = v.coalesce(v.max().over(w))
    return t.mutate(**filled)


def _col(t: ir.Table, name: str) -> ir.StringValue:
    return _text(t[name]) if name in t.columns else ibis.null("string")


def _status(raw: ir.StringValue, preset: Preset) -> ir.StringValue:
    s = raw.lower().re_replace(r"^wc-", "")
    return ibis.cases(*[(s == k, v) for k, v in preset.statuses.items()], else_=s)


def _refund_factor(total: ir.FloatingValue, refunded: ir.FloatingValue) -> ir.FloatingValue:
    """1 - refunded / total, within 0..1; no refund (blank) or no total -> 1."""
    share = (total > 0).ifelse(refunded.fill_null(0) / total, 0.0)
    return 1 - ibis.greatest(ibis.least(share, 1.0), 0.0)


def check_columns(label: str, columns: list[str], preset: Preset) -> None:
    missing = [" or ".join(repr(c) for c in names) for names in preset.needs if not set(names) & set(columns)]
    if missing:
        raise ContractError(
            f"{label} is not a {preset.label} as the preset {preset.name!r} reads it: column "
            f"{', '.join(missing)} is missing (columns found: {', '.join(columns[:12])}"
            f"{'...' if len(columns) > 12 else ''}); export again with all columns, or set columns.preset: null "
            "and map the columns yourself.")


def to_contract(t: ir.Table, preset: Preset, identity: Identity, label: str) -> ir.Table:
    """The export's rows (all text, with ``source_row`` and ``_shape``) as contract order lines plus :data:`PRIVATE`."""
    columns = [c for c in t.columns if c not in ("source_row", "_shape")]
    check_columns(label, columns, preset)
    return {"shopify": _shopify, "woocommerce": _woocommerce}[preset.name](t, preset, identity)


def customers_to_contract(t: ir.Table, identity: Identity) -> ir.Table:
    """A customers.csv beside a platform export: a row without customer_id is named by its e-mail's hash."""
    cid = _text(t["customer_id"]) if "customer_id" in t.columns else ibis.null("string")
    if "email" in t.columns:
        cid = cid.coalesce(identity.of(t["email"]))
    return t.mutate(customer_id=cid)


def _shopify(t: ir.Table, preset: Preset, identity: Identity) -> ir.Table:
    t = _carried(t, preset)
    col = lambda name: _col(t, name)
    price, qty = _number(t["Lineitem price"]), _number(t["Lineitem quantity"]).fill_null(1)
    t = t.mutate(_gross=price * qty, _line_discount=_number(col("Lineitem discount")).fill_null(0),
                 _subtotal=_number(col("Subtotal")),
                 _factor=_refund_factor(_number(col("Total")), _number(col("Refunded Amount"))))
    t = t.mutate(_subtotal=t._subtotal.coalesce((t._gross - t._line_discount).sum().over(ibis.window(group_by="_oid"))))
    t = t.mutate(_order_cents=(t._subtotal * t._factor * 100).round().cast("int64"),
                 _net_cents=(t._subtotal * 100).round().cast("int64"))
    t = _split_cents(t, "_order_cents", "_gross", "_cents")
    t = _split_cents(t, "_net_cents", "_gross", "_net")  # before the refund: what discounts took off the line
    col = lambda name: _col(t, name)
    priced = _number(t["Lineitem price"]).notnull()
    status = col("Cancelled at").notnull().ifelse(CANCELLED, _status(col("Financial Status"), preset))
    return t.select(
        order_id=t._oid,
        customer_id=identity.of(col("Email")),
        order_date=col("Created at"),
        amount=priced.ifelse(_money_text(t._cents), t["Lineitem price"]),
        quantity=_text(t["Lineitem quantity"]),
        product_id=col("Lineitem sku").coalesce(col("Lineitem name")),
        status=status,
        payment_method=col("Payment Method"),
        channel=col("Source"),
        currency=col("Currency").upper(),
        discount_amount=priced.ifelse(
            _money_text(ibis.greatest((t._gross * 100).round().cast("int64") - t._net, 0)), ibis.null("string")),
        coupon_code=col("Discount Code"),
        email=col("Email"),
        _consent=col("Accepts Marketing").lower().isin(list(_YES)).fill_null(False),
        _region=col("Billing Province").coalesce(col("Billing Country")),
        source_row=t.source_row,
        _shape=t._shape,
    )


def _woocommerce(t: ir.Table, preset: Preset, identity: Identity) -> ir.Table:
    t = _carried(t, preset)
    col = lambda name: _col(t, name)
    platform_id = col("customer_id")
    t = t.mutate(_email=col("billing_email"), _norm=Identity.normalise(col("billing_email")),
                 _pid=(platform_id == "0").ifelse(ibis.null("string"), platform_id))
    # A guest whose e-mail a registered customer of this export uses is that customer.
    t = t.mutate(_registered=t._pid.max().over(ibis.window(group_by="_norm")))
    per_item = "item_total" in t.columns
    t = t.mutate(_total=_number(col("order_total")),
                 _factor=_refund_factor(_number(col("order_total")), _number(col("refunded_total"))))
    if per_item:
        t = t.mutate(_line=_number(t["item_total"]))
        t = t.mutate(_order_cents=(t._line.sum().over(ibis.window(group_by="_oid")) * t._factor * 100)
                     .round().cast("int64"))
        t = _split_cents(t, "_order_cents", "_line", "_cents")
        col = lambda name: _col(t, name)
        amount = t._line.isnull().ifelse(t["item_total"], _money_text(t._cents))
        discount = ibis.greatest(_number(col("item_subtotal")) - t._line, 0)
        quantity = col("item_quantity")
        product = col("item_sku").coalesce(col("item_name"))
    else:
        # tax_total is the order's whole tax (cart, shipping and fees): shipping_tax_total is inside it
        net = t._total - _number(col("shipping_total")).fill_null(0) - _number(col("tax_total")).fill_null(0)
        amount = net.isnull().ifelse(col("order_total"), _money_text((net * t._factor * 100).round().cast("int64")))
        discount = _number(col("discount_total"))
        quantity = ibis.null("string")
        product = ibis.null("string")
    customer = t._pid.coalesce(t._norm.notnull().ifelse(t._registered, ibis.null("string")), identity.of(t._email))
    return t.select(
        order_id=t._oid,
        customer_id=customer,
        order_date=col("date") if "date" in t.columns else col("order_date"),
        amount=amount,
        quantity=quantity,
        product_id=product,
        status=_status(col("status"), preset),
        payment_method=col("payment_method"),
        channel=ibis.null("string"),
        currency=col("order_currency").upper(),
        discount_amount=_money_text((discount * 100).round().cast("int64")),
        coupon_code=col("coupon_items").re_extract(r"code:([^;|]+)", 1).nullif(""),
        email=t._email,
        _consent=ibis.literal(False),
        _region=col("billing_state").coalesce(col("billing_country")),
        source_row=t.source_row,
        _shape=t._shape,
    )
