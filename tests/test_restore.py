"""Backups, restores and pruning: the warehouse catches up from a restored watermark while the
change log still holds the changes since; when it does not, or when finance_db comes back as
a new server, the loader stops with a clear message and `acme pipeline resync` converges."""

from __future__ import annotations

import json
import os
import subprocess

from localpg.binaries import binary
from tests.conftest import free_port

FIRST = ["simulate", "--orders", "80", "--concurrency", "2", "--seed", "11"]
SECOND = ["simulate", "--orders", "60", "--concurrency", "2", "--seed", "12"]


def dump(uri: str, path) -> None:
    subprocess.run(
        [binary("pg_dump"), "-Fc", "-f", str(path), uri], check=True, capture_output=True
    )


def restore(uri: str, path) -> None:
    subprocess.run(
        [binary("pg_restore"), "--clean", "--if-exists", "-d", uri, str(path)],
        check=True,
        capture_output=True,
    )


def assert_verified(platform, env=None) -> dict:
    result = json.loads(platform.acme("verify", "--json", env=env).stdout)
    assert result["ok"] is True and result["pending_changes"] == 0
    return result


def staged(platform) -> tuple[int, int]:
    return platform.analytics(
        "select count(*), count(distinct change_id) from staging.change_log", fetch=True
    )[0]


def logged(platform) -> int:
    return platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]


def test_prune_keeps_what_the_warehouse_has_not_loaded(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    landed = staged(platform)[0]
    kept = platform.acme("capture", "prune", "--older-than", "1d").stdout
    assert "dropped 0 segments of the change log; 2 segments left" in kept
    platform.finance("update operations.customers set is_active = false where customer_id <= 3")
    # The segment holding the landed changes holds 3 that are not: it closes, and stays.
    kept = platform.acme("capture", "prune", "--older-than", "0s").stdout
    assert "dropped 0 segments of the change log; 3 segments left" in kept
    assert logged(platform) == landed + 3
    platform.pipeline_run()
    platform.finance("update operations.customers set is_active = true where customer_id <= 3")
    pruned = platform.acme("capture", "prune", "--older-than", "0s").stdout
    assert "dropped 1 segment of the change log (changes through " in pruned
    assert logged(platform) == 3
    platform.pipeline_run()
    assert_verified(platform)
    assert platform.acme("capture", "prune", "--older-than", "2x", check=False).returncode == 2


def test_restored_warehouse_catches_up_from_its_watermark(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    dump(platform.analytics_uri, tmp_path / "analytics.dump")
    platform.acme(*SECOND)
    platform.pipeline_run()
    restore(platform.analytics_uri, tmp_path / "analytics.dump")
    platform.pipeline_run()
    assert_verified(platform)
    total = platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]
    assert staged(platform) == (total, total)


def test_pruned_changes_are_reported_and_resync_converges(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    dump(platform.analytics_uri, tmp_path / "analytics.dump")
    platform.acme(*SECOND)
    platform.pipeline_run()
    platform.acme("capture", "prune", "--older-than", "0s")
    restore(platform.analytics_uri, tmp_path / "analytics.dump")
    before = staged(platform)

    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "was pruned through change" in refused.stderr
    assert "acme pipeline resync" in refused.stderr
    assert staged(platform) == before, "nothing is loaded around the gap"

    resync = platform.acme("pipeline", "resync").stdout
    assert "operations.orders: snapshot of" in resync and "the same source server" in resync
    platform.pipeline_run()
    assert_verified(platform)
    count, distinct = staged(platform)
    assert count == distinct


def test_finance_restored_into_a_new_server_is_detected_and_resynced(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    dump(platform.finance_uri, tmp_path / "finance.dump")
    platform.acme(*SECOND)
    platform.pipeline_run()

    home = tmp_path / "new-server"
    env = {
        **os.environ,
        "ACME_HOME": str(home),
        "ACME_FINANCE_PORT": str(free_port()),
        "ACME_ANALYTICS_PORT": str(free_port()),
    }
    platform.acme("local", "up", env=env)
    try:
        new_finance = json.loads((home / "connections.json").read_text())["finance"]
        subprocess.run(  # the roles are global objects: a restore needs them first
            [
                binary("psql"),
                new_finance,
                "-q",
                "-c",
                "create role acme_capture nologin; create role acme_loader nologin; "
                "create role acme_app nologin",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [binary("pg_restore"), "-d", new_finance, str(tmp_path / "finance.dump")],
            check=True,
            capture_output=True,
        )
        moved = {"ACME_FINANCE_DSN": new_finance}
        before = staged(platform)

        refused = platform.acme("pipeline", "run", check=False, env=moved)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "is not the server and change log the watermark was taken from" in refused.stderr
        assert staged(platform) == before

        assert "a new source server" in platform.acme("pipeline", "resync", env=moved).stdout
        platform.acme("pipeline", "run", env=moved)
        assert_verified(platform, env=moved)

        subprocess.run(
            [
                binary("psql"),
                new_finance,
                "-q",
                "-c",
                "update operations.orders set status = 'CANCELLED' "
                "where order_id = (select min(order_id) from operations.orders)",
            ],
            check=True,
            capture_output=True,
        )
        platform.acme("pipeline", "run", env=moved)
        assert_verified(platform, env=moved)
        count, distinct = staged(platform)
        assert count == distinct
    finally:
        platform.acme("local", "down", env=env, check=False)


def test_capture_installed_afresh_is_detected_and_resynced(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    platform.acme("capture", "uninstall", "--purge")
    platform.acme("capture", "install")  # a new log: its change_ids start again at 1
    platform.finance(
        "update operations.orders set status = 'CANCELLED' "
        "where order_id = (select min(order_id) from operations.orders)"
    )
    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "capture was installed afresh" in refused.stderr
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_verified(platform)
    count, distinct = staged(platform)
    assert count == distinct


def test_capture_copes_with_columns_named_like_its_aliases(platform):
    platform.finance(
        "create table operations.tags (n text primary key, o int, s text, cdc_row int);"
        "insert into operations.tags values ('a', 1, 'x', 0)"
    )
    platform.acme("capture", "install")
    platform.finance(
        "insert into operations.tags values ('b', 2, 'y', 0);"
        "update operations.tags set o = o + 10;"
        "delete from operations.tags where n = 'a'"
    )
    images = platform.finance(
        "select operation, old_row, new_row from cdc.change_log "
        "where table_name = 'tags' and operation not in ('TRUNCATE', 'SCHEMA') "
        "order by change_id",
        fetch=True,
    )
    a = {"n": "a", "o": 1, "s": "x", "cdc_row": 0}
    b = {"n": "b", "o": 2, "s": "y", "cdc_row": 0}
    # One statement's rows come in no defined order; the statements come in order.
    assert images[:2] == [("SNAPSHOT", None, a), ("INSERT", None, b)]
    assert sorted(images[2:4], key=lambda image: image[1]["n"]) == [
        ("UPDATE", a, {**a, "o": 11}),
        ("UPDATE", b, {**b, "o": 12}),
    ]
    assert images[4:] == [("DELETE", {**a, "o": 11}, None)]
