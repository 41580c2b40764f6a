"""`acme simulate`: a realistic order workload from several concurrent writers.

Setup creates customers and products; then each writer, on its own connection, places
orders with 1-10 items and moves its earlier orders through their life: PENDING ->
PROCESSING -> (REPROCESSING) -> COMPLETED, with cancellations, deleted orders and items,
changed quantities and deactivated customers. Each writer draws from its own random
stream seeded from --seed, so a run is repeatable (with one writer, to the identifiers).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from psycopg2.extras import execute_values

from connections.connect import connected
from connections.errors import AcmeError, first_line
from connections.settings import FINANCE

FIRST_ORDER_DATE = datetime(2026, 1, 1, 8, 0, 0)
NEXT_STATUS = {"PENDING": "PROCESSING", "PROCESSING": "COMPLETED", "REPROCESSING": "COMPLETED"}


@dataclass(frozen=True)
class WorkloadSize:
    orders: int = 2000
    concurrency: int = 4
    customers: int | None = None
    products: int | None = None
    duration: float | None = None
    seed: int = 42

    @property
    def customer_count(self) -> int:
        return self.customers or max(10, self.orders // 10)

    @property
    def product_count(self) -> int:
        return self.products or max(20, self.orders // 20)


@dataclass
class WorkloadCounts:
    orders: int = 0
    items: int = 0
    status_changes: int = 0
    cancellations: int = 0
    deleted_orders: int = 0
    deleted_items: int = 0
    deactivated_customers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def summary(self) -> str:
        return (
            f"{self.orders} orders with {self.items} items, {self.status_changes} status "
            f"changes, {self.cancellations} cancellations, {self.deleted_orders} deleted "
            f"orders, {self.deleted_items} deleted items, {self.deactivated_customers} "
            "deactivated customers"
        )


def simulate(size: WorkloadSize, on_order: Callable[[], None] | None = None) -> WorkloadCounts:
    counts = WorkloadCounts()
    customer_ids, product_ids = create_reference_data(size)
    deadline = time.monotonic() + size.duration if size.duration else None
    shares = [size.orders // size.concurrency] * size.concurrency
    for i in range(size.orders % size.concurrency):
        shares[i] += 1
    failures: list[BaseException] = []
    writers = [
        threading.Thread(
            target=run_writer,
            args=(
                random.Random(size.seed * 1000 + n),
                share,
                customer_ids,
                product_ids,
                deadline,
                counts,
                on_order,
                failures,
            ),
            name=f"writer-{n}",
        )
        for n, share in enumerate(shares)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    if failures:
        failure = failures[0]
        if isinstance(failure, AcmeError):
            raise failure
        raise AcmeError(f"a workload writer failed: {first_line(failure)}")
    return counts


def create_reference_data(size: WorkloadSize) -> tuple[list[int], list[int]]:
    rng = random.Random(size.seed)
    with connected(FINANCE, application_name="acme simulate") as conn, conn, conn.cursor() as cur:
        cur.execute("set local role acme_app")
        customers = execute_values(
            cur,
            "insert into operations.customers (customer_name) values %s returning customer_id",
            [
                (f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {n}",)
                for n in range(size.customer_count)
            ],
            fetch=True,
        )
        products = execute_values(
            cur,
            "insert into operations.products (product_name, barcode, unit_price) values %s "
            "returning product_id",
            [
                (
                    f"{rng.choice(PRODUCT_WORDS)} #{n}",
                    f"{rng.randrange(10**12, 10**13)}",
                    round(rng.uniform(0.5, 250.0), 2),
                )
                for n in range(size.product_count)
            ],
            fetch=True,
        )
    return [row[0] for row in customers], [row[0] for row in products]


def run_writer(rng, orders, customer_ids, product_ids, deadline, counts, on_order, failures):
    try:
        with connected(FINANCE, application_name=threading.current_thread().name) as conn:
            with conn.cursor() as cur:
                cur.execute("set role acme_app")
            conn.commit()
            writer = Writer(conn, rng, customer_ids, product_ids, counts)
            for _ in range(orders):
                if deadline and time.monotonic() > deadline:
                    break
                writer.place_order()
                writer.advance_some_order()
                if on_order:
                    on_order()
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        failures.append(exc)


class Writer:
    """One application session: every action is its own transaction."""

    def __init__(self, conn, rng, customer_ids, product_ids, counts):
        self.conn, self.rng, self.counts = conn, rng, counts
        self.customer_ids, self.product_ids = customer_ids, product_ids
        self.open_orders: dict[int, str] = {}

    def place_order(self) -> None:
        rng = self.rng
        order_date = FIRST_ORDER_DATE + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        delivery = (
            None
            if rng.random() < 0.05
            else (order_date.replace(hour=9, minute=0) + timedelta(days=rng.randrange(1, 8)))
        )
        items = [
            (rng.choice(self.product_ids), rng.randrange(1, 20))
            for _ in range(rng.randrange(1, 11))
        ]
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "insert into operations.orders (customer_id, order_date, delivery_date, status) "
                "values (%s, %s, %s, 'PENDING') returning order_id",
                (rng.choice(self.customer_ids), order_date, delivery),
            )
            order_id = cur.fetchone()[0]
            execute_values(
                cur,
                "insert into operations.order_items (order_id, product_id, quantity) values %s",
                [(order_id, product_id, quantity) for product_id, quantity in items],
            )
        self.open_orders[order_id] = "PENDING"
        self.counts.add(orders=1, items=len(items))

    def advance_some_order(self) -> None:
        if not self.open_orders or self.rng.random() < 0.35:
            return
        order_id = self.rng.choice(sorted(self.open_orders))
        roll = self.rng.random()
        if roll < 0.06:
            self.delete_order(order_id)
        elif roll < 0.14:
            self.set_status(order_id, "CANCELLED")
            self.counts.add(cancellations=1)
        elif roll < 0.20:
            self.change_items(order_id)
        elif roll < 0.22:
            self.deactivate_customer(order_id)
        else:
            status = self.open_orders[order_id]
            if status == "PROCESSING" and self.rng.random() < 0.2:
                self.set_status(order_id, "REPROCESSING")
            else:
                self.set_status(order_id, NEXT_STATUS[status])
            self.counts.add(status_changes=1)

    def set_status(self, order_id: int, status: str) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "update operations.orders set status = %s where order_id = %s", (status, order_id)
            )
        if status in ("COMPLETED", "CANCELLED"):
            del self.open_orders[order_id]
        else:
            self.open_orders[order_id] = status

    def delete_order(self, order_id: int) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute("delete from operations.orders where order_id = %s", (order_id,))
        del self.open_orders[order_id]
        self.counts.add(deleted_orders=1)

    def change_items(self, order_id: int) -> None:
        """Drops the order's newest item when it has several, and changes one quantity."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "select order_item_id from operations.order_items where order_id = %s "
                "order by order_item_id",
                (order_id,),
            )
            item_ids = [row[0] for row in cur.fetchall()]
            if len(item_ids) > 1:
                cur.execute(
                    "delete from operations.order_items where order_item_id = %s", (item_ids[-1],)
                )
                self.counts.add(deleted_items=1)
            if item_ids:
                cur.execute(
                    "update operations.order_items set quantity = %s where order_item_id = %s",
                    (self.rng.randrange(1, 20), item_ids[0]),
                )

    def deactivate_customer(self, order_id: int) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "update operations.customers set is_active = false where customer_id = "
                "(select customer_id from operations.orders where order_id = %s) and is_active",
                (order_id,),
            )
            deactivated = cur.rowcount
        self.counts.add(deactivated_customers=deactivated)


COMPANY_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Gringotts",
    "Oceanic",
)
COMPANY_KINDS = ("Corp", "Inc", "LLC", "Ltd", "GmbH", "& Sons", "Group", "Traders")
PRODUCT_WORDS = (
    "Widget",
    "Gadget",
    "Sprocket",
    "Gizmo",
    "Flange",
    "Bolt",
    "Crate",
    "Parcel",
    "Box",
    "Pallet",
    "Tube",
    "Envelope",
)
