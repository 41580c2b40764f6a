"""Each report, exported after the pipeline ran, equals the same question asked of the source
tables by plain SQL: after a first round of changes, after a second (incremental) round, and
after a full refresh."""

from __future__ import annotations

from tests.oracle import expected_csv

EXPORTS = [
    ("open_orders", "open_orders", ()),
    ("open_orders_summary", "open_orders", ("--summary",)),
    ("top_delivery_dates", "top_delivery_dates", ()),
    ("top_delivery_dates", "top_delivery_dates", ("--limit", "10")),
    ("pending_items", "pending_items", ()),
    ("top_customers", "top_customers", ()),
    ("top_customers", "top_customers", ("--limit", "10")),
]

FIRST_ROUND = """
insert into operations.customers (customer_name) values
    ('Acme Corp'), ('Globex Inc'), ('Initech LLC'), ('Umbrella, "Quoted" Ltd'), ('Hooli');
insert into operations.products (product_name, barcode, unit_price) values
    ('Widget', '111', 2.50), ('Gadget', '222', 10), ('Sprocket', '333', 0.99), ('Crate', '444', 5);
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (1, '2026-01-01 10:30:00', '2026-01-05 09:00:00', 'PENDING'),
    (1, '2026-01-01 11:00:00', '2026-01-05 14:00:00', 'PENDING'),
    (2, '2026-01-02 08:15:00', '2026-01-05 09:00:00', 'PROCESSING'),
    (2, '2026-01-02 09:00:00', '2026-01-06 09:00:00', 'PENDING'),
    (3, '2026-01-02 12:00:00', '2026-01-06 10:00:00', 'REPROCESSING'),
    (3, '2026-01-03 12:00:00', '2026-01-07 10:00:00', 'COMPLETED'),
    (4, '2026-01-03 13:00:00', '2026-01-07 10:00:00', 'CANCELLED'),
    (4, '2026-01-03 14:00:00', null, 'PENDING'),
    (5, '2026-01-04 15:00:00', '2026-01-08 10:00:00', 'PENDING'),
    (5, '2026-01-04 16:00:00', '2026-01-08 11:00:00', 'PENDING'),
    (1, '2026-01-04 17:00:00', '2026-01-08 12:00:00', 'PENDING');
insert into operations.order_items (order_id, product_id, quantity) values
    (1, 1, 5), (1, 2, 1), (2, 1, 3), (3, 3, 7), (4, 2, 2), (4, 4, 1), (5, 1, 9),
    (6, 2, 4), (7, 3, 8), (8, 4, 6), (9, 1, 1), (10, 2, 2), (11, 3, 3), (11, 4, 0);
"""

# Status moves, a deleted order (its items go with it), a deleted item, a changed quantity,
# a renamed customer, new orders, and a truncate of the items followed by new items.
SECOND_ROUND = """
update operations.orders set status = 'PROCESSING' where order_id in (1, 9);
update operations.orders set status = 'COMPLETED' where order_id = 3;
update operations.orders set status = 'CANCELLED' where order_id = 10;
update operations.orders set status = 'REPROCESSING' where order_id = 5;
update operations.orders set delivery_date = '2026-01-09 08:00:00' where order_id = 4;
delete from operations.orders where order_id = 2;
delete from operations.order_items where order_id = 4 and product_id = 4;
update operations.order_items set quantity = 42 where order_id = 11 and product_id = 3;
update operations.customers set customer_name = 'Hooli XYZ' where customer_id = 5;
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (3, '2026-01-05 09:00:00', '2026-01-09 08:00:00', 'PENDING'),
    (3, '2026-01-05 10:00:00', '2026-01-09 09:00:00', 'PENDING'),
    (2, '2026-01-05 11:00:00', '2026-01-09 10:00:00', 'PENDING');
"""

THIRD_ROUND = """
truncate operations.order_items;
insert into operations.order_items (order_id, product_id, quantity) values
    (4, 1, 10), (8, 2, 20), (11, 2, 1), (12, 4, 3), (13, 4, 4), (14, 1, 5);
"""


def assert_exports_match_source(platform, tmp_path):
    for report, command, options in EXPORTS:
        limit = int(options[1]) if "--limit" in options else 3
        out = tmp_path / f"{report}-{'-'.join(options) or 'default'}.csv"
        assert platform.export(command, out, *options) == expected_csv(
            platform.finance_uri, report, limit
        ), f"{command} {' '.join(options)} differs from the source"


def test_reports_match_source_through_incremental_rounds_and_full_refresh(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    assert_exports_match_source(platform, tmp_path)
    first = (tmp_path / "open_orders-default.csv").read_text().splitlines()
    assert first[0] == "order_id,customer_id,order_date,delivery_date,status"
    assert first[1] == "1,1,2026-01-01 10:30:00,2026-01-05 09:00:00,PENDING"

    platform.finance(SECOND_ROUND)
    platform.pipeline_run()
    assert_exports_match_source(platform, tmp_path)

    platform.finance(THIRD_ROUND)
    platform.pipeline_run()
    assert_exports_match_source(platform, tmp_path)

    platform.acme("pipeline", "run", "--full-refresh")
    assert_exports_match_source(platform, tmp_path)


def test_marts_hold_the_source_state(platform):
    platform.finance(FIRST_ROUND)
    platform.finance(SECOND_ROUND)
    platform.pipeline_run()
    source = platform.finance(
        "select order_id, customer_id, order_date, delivery_date, status "
        "from operations.orders order by order_id",
        fetch=True,
    )
    warehouse = platform.analytics(
        "select order_id, customer_id, order_date, delivery_date, status "
        "from analytics.fact_orders order by order_id",
        fetch=True,
    )
    assert warehouse == source
    assert platform.analytics(
        "select count(*) from analytics.fact_orders where order_id = 2", fetch=True
    ) == [(0,)]
