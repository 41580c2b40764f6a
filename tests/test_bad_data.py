"""Source values at the edges flow through capture, dbt and the exports unchanged and correctly
quoted: null dates, long unicode names, quotes, newlines and commas, extreme quantities, an
unknown status, and timestamps at year boundaries."""

from __future__ import annotations

import csv
import io
import json

from tests.oracle import expected_csv

LONG_NAME = ("Ünïcødé 😀 漢字かな 🚚 — ") * 30
LONG_NAME = LONG_NAME[:499] + "🎉"
NAMES = [
    LONG_NAME,
    "Quote \"double\" and 'single'",
    "Line one\nLine two\r\nLine three",
    "Comma, Inc., and, more,",
    "  leading and trailing spaces  ",
    "",
    "Backslash \\ tab\t and NUL-free \\N",
    '"',
    "\n",
]

INT4_MAX = 2_147_483_647

# Orders: (customer, order_date, delivery_date, status, updated_at or None).
ORDERS = [
    (1, "1999-12-31 23:59:59.999999", None, "PENDING", None),
    (1, "2000-01-01 00:00:00", "2000-01-01 00:00:00", "PENDING", "2000-01-01 00:00:00"),
    (2, "2026-12-31 23:59:59", "2026-12-31 23:59:59", "ON_HOLD", None),
    (2, "2026-06-01 12:00:00", "1999-12-31 23:59:59.999999", "PENDING", None),
    (3, "2026-06-01 12:00:00", None, "ON_HOLD", None),
    (3, "2026-06-01 12:00:00", "2026-12-31 23:59:59", "PENDING", None),
    (4, "2026-06-01 12:00:00", "2027-01-01 00:00:00", "PENDING", None),
    (5, "2026-06-01 12:00:00", "2026-12-31 23:59:59", "COMPLETED", None),
    (6, "2026-06-01 12:00:00", "2026-12-31 23:59:59", "CANCELLED", None),
    (6, "2026-06-01 12:00:00", "2026-12-31 00:00:00", "PENDING", None),
    (7, "2026-06-01 12:00:00", None, "PENDING", None),
    (8, "2026-06-01 12:00:00", None, "PENDING", None),
    (9, "2026-06-01 12:00:00", None, "PENDING", None),
]

# Items: (order, product, quantity, updated_at or None). Product 1's pending total exceeds int4.
ITEMS = [
    (1, 1, INT4_MAX, "1999-12-31 23:59:59.999999"),
    (2, 1, INT4_MAX, "1999-12-31 23:59:59.999999"),
    (4, 1, 1, None),
    (2, 2, 0, "1999-12-31 23:59:59.999999"),
    (3, 3, INT4_MAX, None),  # ON_HOLD: open, not pending
    (5, 3, 0, None),  # ON_HOLD
    (7, 1, 0, None),
]


def load_edge_cases(platform) -> None:
    conn = platform.finance_connection()
    try:
        with conn, conn.cursor() as cur:
            for name in NAMES:
                cur.execute("insert into operations.customers (customer_name) values (%s)", (name,))
            cur.execute(
                "insert into operations.products (product_name, barcode, unit_price) values "
                "('Widget', null, 0), ('Gadget \"pro\", v2', '0000', 9999999999.99), "
                "('Crate', '', 0.01)"
            )
            for customer, ordered, delivery, status, updated in ORDERS:
                cur.execute(
                    "insert into operations.orders "
                    "(customer_id, order_date, delivery_date, status, updated_at) "
                    "values (%s, %s, %s, %s, coalesce(%s, now() at time zone 'utc'))",
                    (customer, ordered, delivery, status, updated),
                )
            for order, product, quantity, updated in ITEMS:
                cur.execute(
                    "insert into operations.order_items "
                    "(order_id, product_id, quantity, updated_at) "
                    "values (%s, %s, %s, coalesce(%s, now() at time zone 'utc'))",
                    (order, product, quantity, updated),
                )
    finally:
        conn.close()


EXPORTS = [
    ("open_orders", "open_orders", (), 3),
    ("open_orders_summary", "open_orders", ("--summary",), 3),
    ("top_delivery_dates", "top_delivery_dates", ("--limit", "100"), 100),
    ("top_delivery_dates", "top_delivery_dates", (), 3),
    ("pending_items", "pending_items", (), 3),
    ("top_customers", "top_customers", ("--limit", "100"), 100),
]


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_edge_values_flow_through_to_correctly_quoted_csvs(platform, tmp_path):
    load_edge_cases(platform)
    run = platform.acme("pipeline", "run")

    # The unknown status is a dbt test warning, not a failure.
    output = run.stdout + run.stderr
    warned = [
        line
        for line in output.splitlines()
        if "WARN" in line and "accepted_values_fact_orders_status" in line
    ]
    assert warned, output
    assert "ERROR=0" in output and "WARN=" in output

    exports = {}
    for report, command, options, limit in EXPORTS:
        out = tmp_path / f"{report}-{'-'.join(options) or 'default'}.csv"
        platform.acme(command, "--output", str(out), *options)
        # Bytes, not read_text(): universal newlines would turn a name's \r\n into \n.
        exports[(report, options)] = out.read_bytes().decode()
        assert exports[(report, options)] == expected_csv(platform.finance_uri, report, limit), (
            f"{command} {' '.join(options)} differs from the source"
        )

    # The names come back exactly, quotes, newlines, commas, emoji and all.
    customers = parse(exports[("top_customers", ("--limit", "100"))])
    source_names = dict(
        platform.finance(
            "select customer_id::text, customer_name from operations.customers", fetch=True
        )
    )
    assert {row["customer_id"]: row["customer_name"] for row in customers} == {
        customer_id: name
        for customer_id, name in source_names.items()
        if int(customer_id) in {order[0] for order in ORDERS if order[3] == "PENDING"}
    }
    long_row = next(row for row in customers if row["customer_id"] == "1")
    assert long_row["customer_name"] == LONG_NAME and len(LONG_NAME) == 500
    assert customers[0]["total_orders"] == "2"
    raw = exports[("top_customers", ("--limit", "100"))]
    assert '"Quote ""double"" and \'single\'"' in raw
    assert '"Line one\nLine two\r\nLine three"' in raw
    assert '"Comma, Inc., and, more,"' in raw

    # ON_HOLD is open; timestamps are truncated to the second, never rounded past a year end.
    orders = {row["order_id"]: row for row in parse(exports[("open_orders", ())])}
    assert orders["1"]["order_date"] == "1999-12-31 23:59:59"
    assert orders["1"]["delivery_date"] == ""
    assert orders["2"]["delivery_date"] == "2000-01-01 00:00:00"
    assert orders["3"]["status"] == "ON_HOLD"
    assert orders["4"]["delivery_date"] == "1999-12-31 23:59:59"
    assert {"8", "9"}.isdisjoint(orders)  # completed, cancelled
    dates = parse(exports[("top_delivery_dates", ("--limit", "100"))])
    assert dates[0] == {"delivery_date": "2026-12-31", "order_count": "3"}
    assert {row["delivery_date"] for row in dates} == {
        "1999-12-31",
        "2000-01-01",
        "2026-12-31",
        "2027-01-01",
    }
    summary = parse(exports[("open_orders_summary", ("--summary",))])
    assert {"delivery_date": "", "status": "ON_HOLD", "order_count": "1"} in summary

    # Quantities 0 and int4 max; product 1's total overflows int4 and is still exact.
    items = {row["product_id"]: row for row in parse(exports[("pending_items", ())])}
    assert items["1"]["quantity"] == str(2 * INT4_MAX + 1)
    assert items["2"] == {
        "product_id": "2",
        "quantity": "0",
        "last_updated": "2000-01-01 00:00:00",
    }
    assert "3" not in items

    result = json.loads(platform.acme("verify", "--json").stdout)
    assert result["ok"] is True, result
