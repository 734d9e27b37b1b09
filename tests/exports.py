"""Platform export fixtures (issue 16): small Shopify and WooCommerce order exports, each with its truth.

Each function writes one shop's raw folder the way the platform exports it (file names, header row,
value formats) and returns the figures that ``clean.run`` with the matching ``columns.preset`` must
produce, worked out from the rows written here (a few explicit lines of Python per fixture, checked
against totals added up by hand), never by calling project code:

- :func:`shopify_export` (``preset: shopify``): the Shopify admin export (Orders > Export, plain CSV),
  one row per line item, split over ``orders_export_1.csv`` and ``orders_export_2.csv`` (each with its
  own header; no order spans the two files). 13 orders, 21 rows, January to June 2025, EUR, prices
  including VAT. Covers: multi-line orders whose later rows leave the order-level fields blank (in
  #1003 even Email), a discount code, partial refunds (Refunded Amount), a full refund (Financial
  Status ``refunded``), an order cancelled and voided (Cancelled at set), a pending order, an order
  with no e-mail (a shop-counter sale: quarantined), one person's e-mail written three ways (case,
  leading and trailing blanks), returning customers, and a customer who accepted marketing on her
  first orders and declined on her latest kept one.
- :func:`woocommerce_orders_export` (``preset: woocommerce``): the "WooCommerce Customer / Order /
  Coupon Export" extension (SkyVerge), format "Default" (one row per order, items in ``line_items``),
  in the extension's default file name ``orders-export-<timestamp>.csv``, plus a ``customers.csv`` in
  the raw data contract layout (blank customer_id, e-mail, marketing_opt_in) that carries the consent.
  14 orders, EUR, 19 % VAT. Covers: registered customers, a guest (customer_id ``0``) whose e-mail is a
  registered customer's, a returning guest whose e-mail is written two ways, a guest with a blank
  customer_id, a partial and a full refund, cancelled, pending, on-hold and failed orders, a coupon,
  and a phone order with neither customer id nor e-mail (quarantined).
- :func:`woocommerce_items_export` (``preset: woocommerce``): the same extension, format "Default - One
  Row per Item", saved as ``orders.csv``; no customers.csv, so nobody has marketing consent. 11 orders,
  16 rows. Covers the same cases per item row, plus a ``wc-`` status prefix and a refunded item.

Every e-mail is on example.com / example.org. Counts of quarantined and excluded are ROWS of the
export (line items for Shopify and the per-item format, orders for the per-order format), as in
data_quality.json. "customers" counts the customers with at least one kept order (every customer
whose orders are all excluded also has a kept order here, so no fixture has a buyer without one).

Sources of the header rows (copied verbatim):
- Shopify Help Center, "Exporting orders" / "Exporting orders to a CSV file",
  https://help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders (now
  https://help.shopify.com/en/manual/orders/export-orders): the "Order export CSV structure" table
  and the one-row-per-line-item layout. The column ORDER is that of real exports (the help table is
  not in file order), e.g. the example export on https://docs.xbp.app/docs/development/integrations/shopify/order-format
  ("Shopify order export format"), which also shows the ``2025-10-07 09:50:26 +0200`` date format.
- WooCommerce.com, "WooCommerce Customer / Order / Coupon Export" (by SkyVerge),
  https://woocommerce.com/document/ordercustomer-csv-exporter/ and its developer documentation
  https://woocommerce.com/document/ordercustomer-csv-export-developer-documentation ("use the column
  names / keys, which are guaranteed to never change"); the column lists of the formats "Default" and
  "Default - One Row per Item" are the extension's own (v5, CSV_Export_Format_Definition::
  get_predefined_formats; the header row prints each column's NAME, so the order date is ``date``).
"""
from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

AS_OF = "2025-06-30"

# Shopify Help Center, "Exporting orders" (Order export CSV structure):
# https://help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders
# Column order as in real exports (docs.xbp.app "Shopify order export format",
# https://docs.xbp.app/docs/development/integrations/shopify/order-format), 79 columns.
SHOPIFY_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing Address1", "Billing Address2", "Billing Company", "Billing City",
    "Billing Zip", "Billing Province", "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City", "Shipping Zip",
    "Shipping Province", "Shipping Country", "Shipping Phone", "Notes", "Note Attributes", "Cancelled at",
    "Payment Method", "Payment Reference", "Refunded Amount", "Vendor", "Outstanding Balance", "Employee",
    "Location", "Device ID", "Id", "Tags", "Risk Level", "Source", "Lineitem discount", "Tax 1 Name",
    "Tax 1 Value", "Tax 2 Name", "Tax 2 Value", "Tax 3 Name", "Tax 3 Value", "Tax 4 Name", "Tax 4 Value",
    "Tax 5 Name", "Tax 5 Value", "Phone", "Receipt Number", "Duties", "Billing Province Name",
    "Shipping Province Name", "Payment ID", "Payment Terms Name", "Next Payment Due At", "Payment References",
]

# WooCommerce.com, "WooCommerce Customer / Order / Coupon Export" (SkyVerge), format "Default":
# https://woocommerce.com/document/ordercustomer-csv-exporter/
# (header row of v5; vat_number is inserted after billing_company by the extension for built-in formats)
WOO_DEFAULT_HEADER = [
    "order_id", "order_number", "order_number_formatted", "date", "status", "shipping_total",
    "shipping_tax_total", "fee_total", "fee_tax_total", "tax_total", "discount_total", "order_total",
    "refunded_total", "order_currency", "payment_method", "shipping_method", "customer_id", "billing_first_name",
    "billing_last_name", "billing_company", "vat_number", "billing_email", "billing_phone", "billing_address_1",
    "billing_address_2", "billing_postcode", "billing_city", "billing_state", "billing_country",
    "shipping_first_name", "shipping_last_name", "shipping_address_1", "shipping_address_2", "shipping_postcode",
    "shipping_city", "shipping_state", "shipping_country", "shipping_company", "customer_note", "line_items",
    "shipping_items", "fee_items", "tax_items", "coupon_items", "refunds", "order_notes",
    "download_permissions_granted",
]

# WooCommerce.com, "WooCommerce Customer / Order / Coupon Export" (SkyVerge), format "Default - One Row per Item":
# https://woocommerce.com/document/ordercustomer-csv-exporter/
WOO_ONE_ROW_PER_ITEM_HEADER = [
    "order_id", "order_number", "date", "status", "shipping_total", "shipping_tax_total", "fee_total",
    "fee_tax_total", "tax_total", "discount_total", "order_total", "refunded_total", "order_currency",
    "payment_method", "shipping_method", "customer_id", "billing_first_name", "billing_last_name",
    "billing_company", "vat_number", "billing_email", "billing_phone", "billing_address_1", "billing_address_2",
    "billing_postcode", "billing_city", "billing_state", "billing_country", "shipping_first_name",
    "shipping_last_name", "shipping_address_1", "shipping_address_2", "shipping_postcode", "shipping_city",
    "shipping_state", "shipping_country", "shipping_company", "customer_note", "item_id", "item_product_id",
    "item_name", "item_sku", "item_price", "item_quantity", "item_subtotal", "item_subtotal_tax", "item_total",
    "item_total_tax", "item_refunded", "item_refunded_qty", "item_meta", "shipping_items", "fee_items",
    "tax_items", "coupon_items", "order_notes", "download_permissions_granted",
]

# The extension's default "Order Export Filename" is orders-export-%%timestamp%%.csv.
WOO_DEFAULT_FILENAME = "orders-export-2025_07_01_09_15_02.csv"

CENT = Decimal("0.01")


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_UP)


def _norm(email: str) -> str:
    return email.strip().lower()


def _write(path: Path, header: list[str], rows: list[dict]) -> None:
    for row in rows:
        unknown = set(row) - set(header)
        assert not unknown, f"fixture row names columns outside the header: {unknown}"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


# --------------------------------------------------------------------------- Shopify

# Shopify status -> what the cleaning must do with the order (the lead's preset rules).
SHOPIFY_OUTCOME = {"paid": "kept", "partially_refunded": "kept", "authorized": "kept", "partially_paid": "kept",
                   "pending": "unpaid", "refunded": "refunded_in_full", "voided": "cancelled", "expired": "cancelled"}


def _addr(name: str, street: str, zip_: str, city: str, country: str, phone: str = "") -> dict:
    """Billing and shipping columns of a Shopify order (same address both ways)."""
    out = {}
    for side in ("Billing", "Shipping"):
        out.update({f"{side} Name": name, f"{side} Street": street, f"{side} Address1": street,
                    f"{side} City": city, f"{side} Zip": zip_, f"{side} Country": country, f"{side} Phone": phone})
    return out


def _line(qty: int, name: str, price: str, sku: str, vendor: str = "Nordfell", discount: str = "0.00",
          status: str = "fulfilled") -> dict:
    return {"Lineitem quantity": str(qty), "Lineitem name": name, "Lineitem price": price,
            "Lineitem sku": sku, "Lineitem requires shipping": "true", "Lineitem taxable": "true",
            "Lineitem fulfillment status": status, "Vendor": vendor, "Lineitem discount": discount}


ANNA = _addr("Anna Schmidt", "Lindenstraße 14", "'10969", "Berlin", "DE", "+49 30 5550142")
BEN = _addr("Ben Keller", "Hauptstraße 3", "'79098", "Freiburg", "DE")
CLARA = _addr("Clara Novak", "Mariahilfer Straße 88", "'1070", "Wien", "AT", "+43 1 5550188")
DAVID = _addr("David Okafor", "Bergstraße 21", "'69120", "Heidelberg", "DE")
EVA = _addr("Eva Lindqvist", "Friedrichstraße 112", "'40217", "Düsseldorf", "DE")

def _order(name: str, email: str, status: str, created: str, money: tuple[str, str, str, str], method: str,
           address: dict, payment: str, *, paid: str = "", fulfilled: str = "", marketing: str = "no",
           refunded: str = "0.00", outstanding: str = "0.00", taxed: bool = True, source: str = "web",
           **extra: str) -> dict:
    """The order-level fields of a Shopify order's first row. `money`: (Subtotal, Shipping, Taxes, Total);
    `extra`: further columns by their export names (with spaces written as underscores)."""
    subtotal, shipping, taxes, total = money
    head = {"Name": name, "Email": email, "Financial Status": status, "Paid at": paid,
            "Fulfillment Status": "fulfilled" if fulfilled else "unfulfilled", "Fulfilled at": fulfilled,
            "Accepts Marketing": marketing, "Currency": "EUR", "Subtotal": subtotal, "Shipping": shipping,
            "Taxes": taxes, "Total": total, "Discount Amount": "0.00", "Shipping Method": method,
            "Created at": created, **address, "Payment Method": payment, "Refunded Amount": refunded,
            "Outstanding Balance": outstanding, "Id": f"573124000{name[1:]}", "Source": source}
    if source == "web":
        head["Risk Level"] = "Low"
    if taxed:
        head.update({"Tax 1 Name": "DE MwSt 19%", "Tax 1 Value": taxes})
    head.update({k.replace("_", " "): v for k, v in extra.items()})
    return head


# (order-level fields of the first row, its line items, Email repeated on later rows?)
SHOPIFY_ORDERS = [
    (_order("#1001", "anna.schmidt@example.com", "paid", "2025-01-08 10:14:33 +0100",
            ("97.92", "4.90", "16.42", "102.82"), "DHL Paket", ANNA, "Shopify Payments",
            paid="2025-01-08 10:14:41 +0100", fulfilled="2025-01-09 15:02:10 +0100", marketing="yes",
            Discount_Code="WELCOME10", Discount_Amount="10.88"),
     [_line(2, "Merino Wool Beanie - Charcoal", "24.90", "NF-BEAN-CH", discount="4.98"),
      _line(1, "Alpaca Scarf - Oat", "59.00", "NF-SCRF-OT", discount="5.90")], True),
    (_order("#1002", "ben.keller@example.org", "paid", "2025-01-21 19:39:51 +0100",
            ("79.00", "0.00", "12.61", "79.00"), "Kostenloser Versand", BEN, "PayPal Express Checkout",
            paid="2025-01-21 19:40:02 +0100", fulfilled="2025-01-22 11:30:45 +0100"),
     [_line(1, "Waxed Canvas Tote - Olive", "79.00", "NF-TOTE-OL")], True),
    (_order("#1003", "clara.novak@example.com", "paid", "2025-02-03 08:05:09 +0100",
            ("102.90", "4.90", "17.21", "107.80"), "Österreichische Post", CLARA, "Shopify Payments",
            paid="2025-02-03 08:05:17 +0100", fulfilled="2025-02-04 09:12:00 +0100"),
     [_line(2, "Linen Tea Towel Set", "18.50", "NF-TOWL-NA", vendor="Leinenhaus"),
      _line(4, "Stoneware Mug - Sand", "14.00", "NF-MUG-SD", vendor="Töpferei Ahrens"),
      _line(1, "Olive Wood Spoon", "9.90", "NF-SPN-OW")], False),
    (_order("#1004", "clara.novak@example.com", "voided", "2025-02-14 17:58:40 +0100",
            ("28.00", "4.90", "5.25", "32.90"), "Österreichische Post", CLARA, "Shopify Payments", taxed=False,
            Notes="Kundin hat doppelt bestellt", Cancelled_at="2025-02-14 18:03:11 +0100"),
     [_line(2, "Stoneware Mug - Sand", "14.00", "NF-MUG-SD", vendor="Töpferei Ahrens", status="pending")], True),
    (_order("#1005", " Anna.Schmidt@Example.com", "paid", "2025-03-02 21:07:49 +0100",
            ("45.00", "4.90", "7.97", "49.90"), "DHL Paket", ANNA, "Shopify Payments",
            paid="2025-03-02 21:07:55 +0100", fulfilled="2025-03-03 10:44:21 +0100", marketing="yes"),
     [_line(1, "Cashmere Gloves - Navy", "45.00", "NF-GLV-NV")], True),
    (_order("#1006", "david.okafor@example.org", "partially_refunded", "2025-03-18 12:30:58 +0100",
            ("178.00", "0.00", "28.42", "178.00"), "Kostenloser Versand", DAVID, "Klarna",
            paid="2025-03-18 12:31:09 +0100", fulfilled="2025-03-19 08:15:33 +0100", marketing="yes",
            refunded="49.00", Tags="retoure"),
     [_line(1, "Wool Throw Blanket - Moss", "129.00", "NF-THRW-MS"),
      _line(2, "Linen Cushion Cover - Rust", "24.50", "NF-CUSH-RS", vendor="Leinenhaus")], True),
    (_order("#1007", "eva.lindqvist@example.com", "paid", "2025-04-05 09:58:03 +0200",
            ("59.00", "4.90", "10.20", "63.90"), "DHL Paket", EVA, "Shopify Payments",
            paid="2025-04-05 09:58:12 +0200", fulfilled="2025-04-07 14:20:00 +0200"),
     [_line(1, "Alpaca Scarf - Oat", "59.00", "NF-SCRF-OT")], True),
    (_order("#1008", "eva.lindqvist@example.com", "refunded", "2025-04-12 16:45:21 +0200",
            ("69.90", "4.90", "11.94", "74.80"), "DHL Paket", EVA, "Shopify Payments",
            paid="2025-04-12 16:45:30 +0200", fulfilled="2025-04-14 10:01:02 +0200", refunded="74.80",
            Tags="retoure"),
     [_line(1, "Merino Wool Beanie - Charcoal", "24.90", "NF-BEAN-CH"),
      _line(1, "Cashmere Gloves - Navy", "45.00", "NF-GLV-NV")], True),
    (_order("#1009", "ben.keller@example.org", "partially_refunded", "2025-04-27 11:11:39 +0200",
            ("153.00", "5.90", "25.37", "158.90"), "DHL Express", BEN, "PayPal Express Checkout",
            paid="2025-04-27 11:11:48 +0200", fulfilled="2025-04-28 09:30:15 +0200", marketing="yes",
            refunded="20.00", Discount_Code="SPRING15", Discount_Amount="15.00"),
     [_line(1, "Waxed Canvas Backpack - Olive", "149.00", "NF-BKPK-OL", discount="13.30"),
      _line(1, "Leather Key Fob", "19.00", "NF-FOB-BR", vendor="Sattlerei Brandt", discount="1.70")], True),
    (_order("#1010", "ANNA.SCHMIDT@example.com ", "authorized", "2025-05-09 07:49:26 +0200",
            ("83.90", "4.90", "14.18", "88.80"), "DHL Paket", ANNA, "Klarna"),
     [_line(1, "Merino Wool Beanie - Charcoal", "24.90", "NF-BEAN-CH", status="pending"),
      _line(1, "Alpaca Scarf - Oat", "59.00", "NF-SCRF-OT", status="pending")], True),
    (_order("#1011", "", "paid", "2025-05-22 14:02:31 +0200", ("33.80", "0.00", "5.40", "33.80"), "", {}, "Cash",
            paid="2025-05-22 14:02:37 +0200", fulfilled="2025-05-22 14:02:37 +0200", source="pos",
            Employee="Jonas Weber", Location="Nordfell Laden Berlin", Device_ID="2", Receipt_Number="1-1011"),
     [_line(1, "Stoneware Mug - Sand", "14.00", "NF-MUG-SD", vendor="Töpferei Ahrens"),
      _line(2, "Olive Wood Spoon", "9.90", "NF-SPN-OW")], True),
    (_order("#1012", "david.okafor@example.org", "pending", "2025-06-03 22:16:05 +0200",
            ("49.00", "4.90", "8.61", "53.90"), "DHL Paket", DAVID, "Bank Deposit", outstanding="53.90"),
     [_line(2, "Linen Cushion Cover - Rust", "24.50", "NF-CUSH-RS", vendor="Leinenhaus", status="pending")], True),
    (_order("#1013", "ben.keller@example.org", "paid", "2025-06-20 18:25:33 +0200",
            ("38.00", "3.90", "6.69", "41.90"), "Deutsche Post Warensendung", BEN, "PayPal Express Checkout",
            paid="2025-06-20 18:25:40 +0200", fulfilled="2025-06-23 08:40:11 +0200", marketing="yes"),
     [_line(2, "Leather Key Fob", "19.00", "NF-FOB-BR", vendor="Sattlerei Brandt")], True),
]


def _shopify_rows(orders) -> list[dict]:
    """One row per line item; the order-level fields only on the order's first row (later rows keep
    Name and, as real exports do, Email, unless the order says otherwise)."""
    rows = []
    for head, lines, email_on_later_rows in orders:
        rows.append({**head, **lines[0]})
        for line in lines[1:]:
            later = {"Name": head["Name"], **line}
            if email_on_later_rows:
                later["Email"] = head["Email"]
            rows.append(later)
    return rows


def shopify_export(out: Path) -> dict:
    """Write orders_export_1.csv (#1013-#1007, newest first as Shopify lists them) and orders_export_2.csv
    (#1006-#1001) into ``out``; return the figures the cleaning must produce (see the module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    newest_first = SHOPIFY_ORDERS[::-1]
    _write(out / "orders_export_1.csv", SHOPIFY_HEADER, _shopify_rows(newest_first[:7]))
    _write(out / "orders_export_2.csv", SHOPIFY_HEADER, _shopify_rows(newest_first[7:]))

    orders = kept_lines = quarantined = 0
    revenue = Decimal(0)
    excluded: dict[str, int] = {}
    latest: dict[str, tuple[str, bool]] = {}  # customer -> (Created at of the latest kept order, consent)
    for head, lines, _ in SHOPIFY_ORDERS:
        email = _norm(head["Email"])
        outcome = "cancelled" if head.get("Cancelled at") else SHOPIFY_OUTCOME[head["Financial Status"]]
        if not email:
            quarantined += len(lines)
        elif outcome != "kept":
            excluded[outcome] = excluded.get(outcome, 0) + len(lines)
        else:
            orders += 1
            kept_lines += len(lines)
            refunded = Decimal(head.get("Refunded Amount") or "0")
            revenue += _cents(Decimal(head["Subtotal"]) * (1 - min(refunded / Decimal(head["Total"]), Decimal(1))))
            if email not in latest or head["Created at"] > latest[email][0]:  # one offset per season: text order is time order
                latest[email] = (head["Created at"], head["Accepts Marketing"] == "yes")
    # added up by hand: 97.92 + 79.00 + 102.90 + 45.00 + 129.00 + 59.00 + 133.74 (153.00 x 138.90 / 158.90)
    # + 83.90 + 38.00
    assert revenue == Decimal("768.46"), revenue
    assert (orders, kept_lines, quarantined, len(latest)) == (9, 15, 2, 5)
    assert excluded == {"cancelled": 1, "refunded_in_full": 2, "unpaid": 1}
    return {
        "orders": orders,
        "lines_kept": kept_lines,
        "revenue": float(revenue),
        "customers": len(latest),
        # anna said yes on #1001 and #1005, no on her latest kept order #1010; david's later order #1012
        # (no) is pending, so his latest KEPT order #1006 (yes) decides
        "consent": {email: flag for email, (_, flag) in latest.items()},
        "quarantined": quarantined,
        "excluded": excluded,
        "emails": sorted({h["Email"] for h, _, _ in SHOPIFY_ORDERS if h["Email"]}),
    }


# --------------------------------------------------------------------------- WooCommerce

WOO_OUTCOME = {"completed": "kept", "processing": "kept", "cancelled": "cancelled", "pending": "unpaid",
               "on-hold": "unpaid", "failed": "unpaid", "refunded": "refunded_in_full"}


def _woo_customer(row: dict, registered: dict[str, str]) -> str | None:
    """The preset's customer rule: customer_id unless blank or 0; a guest whose e-mail is a registered
    customer's belongs to that customer; other guests are their normalised e-mail; else None."""
    cid = row["customer_id"].strip()
    email = _norm(row["billing_email"])
    if cid not in ("", "0"):
        return "id:" + cid
    if email in registered:
        return registered[email]
    return "email:" + email if email else None


def _woo_truth(orders: list[tuple[dict, list[dict]]], consent_file: dict[str, bool]) -> dict:
    """Figures of a WooCommerce export from its orders: (order-level fields, item rows) each; the item
    rows are empty for the per-order format (revenue from the order totals, one row per order)."""
    registered = {_norm(o["billing_email"]): "id:" + o["customer_id"] for o, _ in orders
                  if o["customer_id"] not in ("", "0") and o["billing_email"].strip()}
    n_orders = kept_rows = quarantined = 0
    revenue = Decimal(0)
    excluded: dict[str, int] = {}
    customers: dict[str, str] = {}  # customer -> its normalised e-mail (the first one seen)
    for o, items in orders:
        rows = len(items) or 1
        customer = _woo_customer(o, registered)
        outcome = WOO_OUTCOME[o["status"].removeprefix("wc-")]
        if customer is None:
            quarantined += rows
        elif outcome != "kept":
            excluded[outcome] = excluded.get(outcome, 0) + rows
        else:
            n_orders += 1
            kept_rows += rows
            total = Decimal(o["order_total"])
            factor = 1 - min(Decimal(o["refunded_total"]) / total, Decimal(1))
            if items:
                net = sum(Decimal(i["item_total"]) for i in items)
            else:  # tax_total already includes shipping_tax_total (and fee tax): not subtracted twice
                net = total - Decimal(o["shipping_total"]) - Decimal(o["tax_total"])
            revenue += _cents(net * factor)
            customers.setdefault(customer, _norm(o["billing_email"]))
    return {"orders": n_orders, "lines_kept": kept_rows, "revenue": revenue, "customers": len(customers),
            "consent": {e: consent_file.get(e, False) for e in customers.values()},
            "quarantined": quarantined, "excluded": excluded}


def _woo_order(order_id: int, date: str, status: str, customer_id: str, first: str, last: str, email: str,
               city: str, postcode: str, country: str, *, shipping: str, shipping_tax: str, tax: str,
               total: str, refunded: str = "0.00", discount: str = "0.00", payment: str = "stripe",
               shipping_method: str = "Flat rate", street: str = "", phone: str = "") -> dict:
    """The order-level columns both formats share (values as the extension writes them)."""
    return {
        "order_id": str(order_id), "order_number": str(order_id), "date": date, "status": status,
        "shipping_total": shipping, "shipping_tax_total": shipping_tax, "fee_total": "0.00",
        "fee_tax_total": "0.00", "tax_total": tax, "discount_total": discount, "order_total": total,
        "refunded_total": refunded, "order_currency": "EUR", "payment_method": payment,
        "shipping_method": shipping_method if shipping != "0.00" else "Free shipping", "customer_id": customer_id,
        "billing_first_name": first, "billing_last_name": last, "billing_email": email, "billing_phone": phone,
        "billing_address_1": street, "billing_postcode": postcode, "billing_city": city, "billing_country": country,
        "shipping_first_name": first, "shipping_last_name": last, "shipping_address_1": street,
        "shipping_postcode": postcode, "shipping_city": city, "shipping_country": country,
        "shipping_items": (f"id:{order_id * 10 + 9}|method_id:"
                           f"{'flat_rate' if shipping != '0.00' else 'free_shipping'}|method_title:"
                           f"{shipping_method if shipping != '0.00' else 'Free shipping'}|total:{shipping}"),
        "tax_items": f"id:{order_id * 10 + 8}|rate_id:1|code:DE-MWST-1|title:MwSt.|total:{tax}",
        "download_permissions_granted": "0",
    }


def _woo_line(item_id: int, product_id: int, name: str, sku: str, qty: int, subtotal: str, total: str,
              tax: str, refunded: str = "0.00", refunded_qty: str = "0", meta: str = "") -> dict:
    return {"item_id": str(item_id), "item_product_id": str(product_id), "item_name": name, "item_sku": sku,
            "item_price": str(_cents(Decimal(subtotal) / qty)), "item_quantity": str(qty),
            "item_subtotal": subtotal, "item_subtotal_tax": str(_cents(Decimal(subtotal) * Decimal("0.19"))),
            "item_total": total, "item_total_tax": tax, "item_refunded": refunded,
            "item_refunded_qty": refunded_qty, "item_meta": meta}


def _catalogue(first_id: int, products: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """A shop's products as (product id, name, SKU), numbered from `first_id`."""
    return [(first_id + k, name, sku) for k, (name, sku) in enumerate(products)]


def _item(item_id: int, product: tuple[int, str, str], qty: int, subtotal: str, total: str, tax: str, **kw) -> dict:
    """A line item of `product` (its id, name and SKU)."""
    return _woo_line(item_id, product[0], product[1], product[2], qty, subtotal, total, tax, **kw)


def _pipe_items(items: list[dict]) -> str:
    """The Default format's line_items cell: items separated by ';', fields by '|'."""
    return ";".join(
        f"id:{i['item_id']}|name:{i['item_name']}|product_id:{i['item_product_id']}|sku:{i['item_sku']}|"
        f"quantity:{i['item_quantity']}|subtotal:{i['item_subtotal']}|subtotal_tax:{i['item_subtotal_tax']}|"
        f"total:{i['item_total']}|total_tax:{i['item_total_tax']}|refunded:{i['item_refunded']}|"
        f"refunded_qty:{i['item_refunded_qty']}|meta:{i['item_meta']}" for i in items)


# Default format: an outdoor-clothing shop (19 % VAT, prices without VAT as WooCommerce stores them).
OLIVER = dict(customer_id="12", first="Oliver", last="Bennett", email="oliver.bennett@example.com",
              city="Hamburg", postcode="20354", country="DE", street="Colonnaden 5")
PRIYA = dict(customer_id="27", first="Priya", last="Shah", email="priya.shah@example.org", city="München",
             postcode="80331", country="DE", street="Sendlinger Straße 40")
TOM = dict(customer_id="31", first="Tom", last="Gallagher", email="tom.gallagher@example.com", city="Köln",
           postcode="50667", country="DE", street="Hohe Straße 101")
HANNAH = dict(first="Hannah", last="O'Connor", city="Leipzig", postcode="04109", country="DE",
              street="Karl-Liebknecht-Straße 9")
LUCAS = dict(first="Lucas", last="Martin", city="Strasbourg", postcode="67000", country="FR",
             street="12 Rue des Grandes Arcades")

_TEE, _JACKET, _SOCKS, _SHIRT, _OVERSHIRT, _BEANIE = _catalogue(101, [
    ("Organic Cotton Tee - Black, M", "OCT-BLK-M"), ("Recycled Denim Jacket", "RDJ-IND-L"),
    ("Bamboo Socks 3-Pack", "BSK-3P-4346"), ("Linen Shirt - Sky", "LSH-SKY-M"),
    ("Wool Overshirt - Forest", "WOS-FOR-L"), ("Hemp Beanie", "HBN-NAT")])


def _woo_default_orders() -> list[tuple[dict, list[dict]]]:
    """(order row, its items) for the Default format; the items go into the line_items cell."""
    specs = [
        (_woo_order(2301, "2025-01-11 14:32:07", "completed", **OLIVER, shipping="3.95", shipping_tax="0.75",
                    tax="9.11", total="57.06", payment="paypal"),
         [_item(5101, _TEE, 2, "44.00", "44.00", "8.36")]),
        (_woo_order(2302, "2025-01-25 09:03:44", "completed", "0", email="hannah.oconnor@example.org", **HANNAH,
                    shipping="0.00", shipping_tax="0.00", tax="16.91", total="105.91"),
         [_item(5102, _JACKET, 1, "89.00", "89.00", "16.91")]),
        (_woo_order(2303, "2025-02-08 20:15:31", "completed", **PRIYA, shipping="3.95", shipping_tax="0.75",
                    tax="11.53", total="72.18", discount="6.30"),
         [_item(5103, _SOCKS, 1, "15.00", "13.50", "2.57"), _item(5104, _SHIRT, 1, "48.00", "43.20", "8.21")]),
        (_woo_order(2304, "2025-02-19 11:47:02", "cancelled", **TOM, shipping="3.95", shipping_tax="0.75",
                    tax="15.00", total="93.95"),
         [_item(5105, _OVERSHIRT, 1, "75.00", "75.00", "14.25")]),
        (_woo_order(2305, "2025-03-06 16:20:19", "completed", **TOM, shipping="3.95", shipping_tax="0.75",
                    tax="13.29", total="83.24", refunded="26.18"),
         [_item(5106, _TEE, 3, "66.00", "66.00", "12.54", refunded="22.00", refunded_qty="-1")]),
        (_woo_order(2306, "2025-03-22 13:05:55", "completed", "0", email="Priya.Shah@Example.org",
                    **{k: v for k, v in PRIYA.items() if k not in ("customer_id", "email")},
                    shipping="3.95", shipping_tax="0.75", tax="9.87", total="61.82"),
         [_item(5107, _SHIRT, 1, "48.00", "48.00", "9.12")]),
        (_woo_order(2307, "2025-04-02 08:41:10", "pending", **OLIVER, shipping="0.00", shipping_tax="0.00",
                    tax="16.91", total="105.91", payment="bacs"),
         [_item(5108, _JACKET, 1, "89.00", "89.00", "16.91")]),
        (_woo_order(2308, "2025-04-15 22:09:37", "failed", **PRIYA, shipping="3.95", shipping_tax="0.75",
                    tax="6.45", total="40.40"),
         [_item(5109, _SOCKS, 2, "30.00", "30.00", "5.70")]),
        (_woo_order(2309, "2025-04-20 10:30:00", "processing", "", email="lucas.martin@example.com", **LUCAS,
                    shipping="3.95", shipping_tax="0.75", tax="7.59", total="47.54"),
         [_item(5110, _BEANIE, 2, "36.00", "36.00", "6.84")]),
        (_woo_order(2310, "2025-05-03 17:52:48", "refunded", **OLIVER, shipping="3.95", shipping_tax="0.75",
                    tax="15.00", total="93.95", refunded="93.95", payment="paypal"),
         [_item(5111, _OVERSHIRT, 1, "75.00", "75.00", "14.25", refunded="75.00", refunded_qty="-1")]),
        (_woo_order(2311, "2025-05-17 19:26:13", "completed", "0", email=" Hannah.OConnor@Example.org ", **HANNAH,
                    shipping="3.95", shipping_tax="0.75", tax="10.63", total="66.58"),
         [_item(5112, _TEE, 1, "22.00", "22.00", "4.18"), _item(5113, _SOCKS, 2, "30.00", "30.00", "5.70")]),
        (_woo_order(2312, "2025-05-29 11:14:26", "completed", "0", first="Walter", last="Brenner", email="",
                    city="Kassel", postcode="34117", country="DE", street="Königsplatz 2", phone="0561 5550123",
                    shipping="3.95", shipping_tax="0.75", tax="4.17", total="26.12", payment="cod"),
         [_item(5114, _BEANIE, 1, "18.00", "18.00", "3.42")]),
        (_woo_order(2313, "2025-06-10 07:58:39", "on-hold", **TOM, shipping="3.95", shipping_tax="0.75",
                    tax="9.87", total="61.82", payment="bacs"),
         [_item(5115, _SHIRT, 1, "48.00", "48.00", "9.12")]),
        (_woo_order(2314, "2025-06-24 15:40:02", "completed", **OLIVER, shipping="0.00", shipping_tax="0.00",
                    tax="5.70", total="35.70"),
         [_item(5116, _SOCKS, 2, "30.00", "30.00", "5.70")]),
    ]
    out = []
    for order, items in specs:
        order = {**order, "line_items": _pipe_items(items)}
        if order["order_id"] == "2303":
            order["coupon_items"] = "code:save10|description:10 % on everything|amount:6.30"
        if order["order_id"] in ("2305", "2310"):
            order["refunds"] = f"id:{int(order['order_id']) * 10 + 7}|date:2025-06-01 10:00:00|amount:{order['refunded_total']}|reason:Returned"
        if order["status"] == "on-hold":
            order["order_notes"] = "Awaiting BACS payment Order status changed from Pending payment to On hold."
        out.append((order, items))
    return out


# customers.csv in the raw data contract layout: the consent from the shop's newsletter tool, by e-mail
WOO_CUSTOMERS_CSV = [
    {"customer_id": "", "email": "Oliver.Bennett@example.com", "marketing_opt_in": "yes"},
    {"customer_id": "", "email": "priya.shah@example.org", "marketing_opt_in": "no"},
    {"customer_id": "", "email": "hannah.oconnor@example.org ", "marketing_opt_in": "1"},
]


def woocommerce_orders_export(out: Path) -> dict:
    """Write the "Default" format (one row per order) as orders-export-<timestamp>.csv and a customers.csv
    into ``out``; return the figures the cleaning must produce."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    orders = _woo_default_orders()
    _write(out / WOO_DEFAULT_FILENAME, WOO_DEFAULT_HEADER, [o for o, _ in orders])
    _write(out / "customers.csv", ["customer_id", "email", "marketing_opt_in"], WOO_CUSTOMERS_CSV)

    consent = {_norm(c["email"]): c["marketing_opt_in"] in ("yes", "1") for c in WOO_CUSTOMERS_CSV}
    truth = _woo_truth([(o, []) for o, _ in orders], consent)  # per order: revenue from the order totals
    # by hand: 44.00 + 89.00 + 56.70 + 45.24 (66.00 x 57.06 / 83.24) + 48.00 + 36.00 + 52.00 + 30.00
    assert truth["revenue"] == Decimal("400.94"), truth["revenue"]
    assert (truth["orders"], truth["customers"], truth["quarantined"]) == (8, 5, 1)
    assert truth["excluded"] == {"cancelled": 1, "unpaid": 3, "refunded_in_full": 1}
    # the per-order figure equals the items' total (no fees): the two layouts agree
    assert all(Decimal(o["order_total"]) - Decimal(o["shipping_total"]) - Decimal(o["tax_total"])
               == sum(Decimal(i["item_total"]) for i in items) for o, items in orders)
    emails = {o["billing_email"] for o, _ in orders if o["billing_email"]} | {c["email"] for c in WOO_CUSTOMERS_CSV}
    return {**truth, "revenue": float(truth["revenue"]), "emails": sorted(emails)}


# Default - One Row per Item: a coffee-equipment shop.
EMMA = dict(customer_id="5", first="Emma", last="Clarke", email="emma.clarke@example.com", city="Bremen",
            postcode="28195", country="DE", street="Obernstraße 60")
NOAH = dict(customer_id="8", first="Noah", last="Fischer", email="noah.fischer@example.org", city="Dresden",
            postcode="01067", country="DE", street="Wilsdruffer Straße 24")
SOFIA = dict(first="Sofia", last="Rossi", city="Bozen", postcode="39100", country="IT", street="Via dei Portici 30")
JACK = dict(first="Jack", last="Wilson", city="Nürnberg", postcode="90402", country="DE", street="Königstraße 17")

_DRIPPER, _FILTERS, _GRINDER, _KETTLE, _ETHIOPIA, _COLOMBIA = _catalogue(201, [
    ("Ceramic Pour-Over Dripper", "CPD-WHT"), ("Paper Filters (100)", "PF-100"), ("Burr Coffee Grinder", "BCG-STEEL"),
    ("Gooseneck Kettle 1 l", "GNK-1L-BLK"), ("Single Origin Beans - Ethiopia 250 g", "SOB-ETH-250"),
    ("Single Origin Beans - Colombia 250 g", "SOB-COL-250")])


def _woo_item_orders() -> list[tuple[dict, list[dict]]]:
    return [
        (_woo_order(3101, "2025-01-09 12:00:41", "completed", **EMMA, shipping="4.50", shipping_tax="0.86",
                    tax="7.89", total="49.39"),
         [_item(6101, _DRIPPER, 1, "28.00", "28.00", "5.32"), _item(6102, _FILTERS, 2, "9.00", "9.00", "1.71")]),
        (_woo_order(3102, "2025-01-30 18:44:09", "processing", **NOAH, shipping="0.00", shipping_tax="0.00",
                    tax="18.09", total="113.29", discount="23.80"),
         [_item(6103, _GRINDER, 1, "119.00", "95.20", "18.09")]),
        (_woo_order(3103, "2025-02-15 09:27:50", "completed", "0", email="Emma.Clarke@Example.com",
                    **{k: v for k, v in EMMA.items() if k not in ("customer_id", "email")},
                    shipping="4.50", shipping_tax="0.86", tax="5.61", total="35.11"),
         [_item(6104, _ETHIOPIA, 2, "25.00", "25.00", "4.75", meta="Grind=Whole bean")]),
        (_woo_order(3104, "2025-03-04 14:12:33", "cancelled", **NOAH, shipping="4.50", shipping_tax="0.86",
                    tax="12.07", total="75.57"),
         [_item(6105, _KETTLE, 1, "59.00", "59.00", "11.21")]),
        (_woo_order(3105, "2025-03-19 20:05:18", "completed", "0", email="sofia.rossi@example.com", **SOFIA,
                    shipping="4.50", shipping_tax="0.86", tax="12.93", total="80.93", refunded="5.36"),
         [_item(6106, _KETTLE, 1, "59.00", "59.00", "11.21"),
          _item(6107, _FILTERS, 1, "4.50", "4.50", "0.86", refunded="4.50", refunded_qty="-1")]),
        (_woo_order(3106, "2025-04-08 11:36:02", "refunded", **EMMA, shipping="0.00", shipping_tax="0.00",
                    tax="22.61", total="141.61", refunded="141.61"),
         [_item(6108, _GRINDER, 1, "119.00", "119.00", "22.61", refunded="119.00", refunded_qty="-1")]),
        (_woo_order(3107, "2025-04-26 16:48:27", "wc-completed", "", email="jack.wilson@example.org", **JACK,
                    shipping="4.50", shipping_tax="0.86", tax="7.13", total="44.63", payment="paypal"),
         [_item(6109, _COLOMBIA, 3, "33.00", "33.00", "6.27", meta="Grind=Filter")]),
        (_woo_order(3108, "2025-05-11 07:19:55", "pending", "0", email="SOFIA.ROSSI@EXAMPLE.COM", **SOFIA,
                    shipping="4.50", shipping_tax="0.86", tax="8.56", total="53.56", payment="bacs"),
         [_item(6110, _DRIPPER, 1, "28.00", "28.00", "5.32"),
          _item(6111, _ETHIOPIA, 1, "12.50", "12.50", "2.38", meta="Grind=Espresso")]),
        (_woo_order(3109, "2025-05-27 10:02:14", "completed", "0", first="Greta", last="Vogel", email="",
                    city="Erfurt", postcode="99084", country="DE", street="Anger 1", phone="0361 5550177",
                    shipping="4.50", shipping_tax="0.86", tax="12.93", total="80.93", payment="cod"),
         [_item(6112, _KETTLE, 1, "59.00", "59.00", "11.21"), _item(6113, _FILTERS, 1, "4.50", "4.50", "0.86")]),
        (_woo_order(3110, "2025-06-14 13:31:46", "processing", "0", email=" Sofia.Rossi@Example.com", **SOFIA,
                    shipping="4.50", shipping_tax="0.86", tax="8.75", total="54.75"),
         [_item(6114, _DRIPPER, 1, "28.00", "28.00", "5.32"), _item(6115, _FILTERS, 3, "13.50", "13.50", "2.57")]),
        (_woo_order(3111, "2025-06-27 21:10:08", "failed", **NOAH, shipping="0.00", shipping_tax="0.00",
                    tax="22.61", total="141.61"),
         [_item(6116, _GRINDER, 1, "119.00", "119.00", "22.61")]),
    ]


def woocommerce_items_export(out: Path) -> dict:
    """Write the "Default - One Row per Item" format as orders.csv into ``out`` (no customers.csv); return
    the figures the cleaning must produce."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    orders = _woo_item_orders()
    rows = []
    for order, items in orders:
        for i in items:
            row = {**order, **i}
            if order["order_id"] == "3102":
                row["coupon_items"] = "code:winter20|description:20 % off grinders|amount:23.80"
            rows.append(row)
    _write(out / "orders.csv", WOO_ONE_ROW_PER_ITEM_HEADER, rows)

    truth = _woo_truth(orders, {})
    # by hand: 37.00 + 95.20 + 25.00 + 59.29 (63.50 x 75.57 / 80.93) + 33.00 + 41.50
    assert truth["revenue"] == Decimal("290.99"), truth["revenue"]
    assert (truth["orders"], truth["lines_kept"], truth["customers"], truth["quarantined"]) == (6, 9, 4, 2)
    assert truth["excluded"] == {"cancelled": 1, "refunded_in_full": 1, "unpaid": 3}
    assert len(rows) == 16
    emails = {o["billing_email"] for o, _ in orders if o["billing_email"]}
    return {**truth, "revenue": float(truth["revenue"]), "emails": sorted(emails)}
