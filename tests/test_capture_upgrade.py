"""`acme capture install` on a finance_db captured by the previous release (one generic
trigger function that EXECUTEs dynamic SQL, no load fence, no schema events) moves every
table to its own static capture function in place: changes written before, during and after
the upgrade all land once."""

from __future__ import annotations

from pathlib import Path

from tests.steady_writer import steady_writer
from tests.test_prune_segments import partitions
from tests.test_restore import assert_verified, logged, staged

PREVIOUS_RELEASE = Path(__file__).parent / "fixtures" / "change_log_v1.sql"
TABLES = ("customers", "products", "orders", "order_items")


def install_previous_release(platform) -> None:
    platform.finance("drop schema cdc cascade")
    platform.finance(PREVIOUS_RELEASE.read_text())
    for table in TABLES:
        platform.finance(f"select cdc.start_capture('operations.{table}')")


def test_install_upgrades_the_previous_release_in_place(platform):
    install_previous_release(platform)
    platform.acme("simulate", "--orders", "40", "--concurrency", "2", "--seed", "21")
    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "installed by an older version" in refused.stderr

    with steady_writer(platform.finance_uri, "during") as written:
        platform.acme("capture", "install")
    assert written, "the writer wrote while capture was upgraded"

    functions = platform.finance(
        "select distinct tgfoid::regproc::text from pg_trigger where tgname like 'acme_capture_%'",
        fetch=True,
    )
    assert len(functions) == len(TABLES)
    assert all(name.startswith("cdc.capture_operations_") for (name,) in functions)
    assert platform.finance(
        "select to_regprocedure('cdc.capture_changes()') is null", fetch=True
    ) == [(True,)]

    platform.acme("simulate", "--orders", "20", "--concurrency", "2", "--seed", "22")
    platform.pipeline_run()
    assert_verified(platform)
    logged_before = logged(platform)
    assert staged(platform) == (logged_before, logged_before), "every change landed, once"
    during = platform.analytics(
        "select count(*) from analytics.dim_customers where customer_name = 'during'", fetch=True
    )
    assert during == [(len(written),)]

    # The old log became the partition below the first segment, and goes whole once landed.
    assert partitions(platform) == [
        "cdc.change_log_legacy",
        "cdc.change_log_s1",
        "cdc.change_log_s2",
    ]
    # Both landed whole: the old log, and the segment written since the upgrade.
    pruned = platform.acme("capture", "prune", "--older-than", "0s").stdout
    assert "dropped 2 segments of the change log" in pruned
    assert logged(platform) == 0
    assert staged(platform)[0] == logged_before, "the staged history keeps what was pruned"
    assert_verified(platform)


def test_a_renamed_table_is_logged_under_its_own_name(platform):
    platform.finance(
        "alter table operations.products rename to products_old;"
        "insert into operations.products_old (product_name) values ('after the rename')"
    )
    logged_as = platform.finance(
        "select table_name from cdc.change_log where operation = 'INSERT'", fetch=True
    )
    assert logged_as == [("products_old",)]
