"""Taking table locks beside a live application without stalling or deadlocking it.

capture install and resync lock several tables one after another inside one transaction,
while the application may lock the same tables in another order. Each attempt waits at
most LOCK_WAIT for a lock and then gives up all it holds and tries again, so an
application transaction never waits on us longer than that, and never long enough for its
own deadlock check (deadlock_timeout, 1s by default) to fire and abort it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from psycopg2 import errors

from connections.errors import PipelineError

LOCK_WAIT = "200ms"
GIVE_UP_SECONDS = 30.0

T = TypeVar("T")


def set_short_lock_wait(cur) -> None:
    cur.execute(f"set local lock_timeout = '{LOCK_WAIT}'")


def retry_on_lock_conflict(attempt: Callable[[], T], what: str) -> T:
    """Runs attempt (one transaction that calls set_short_lock_wait) until it gets its locks."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    pause = 0.1
    while True:
        try:
            return attempt()
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{what} could not take its table locks for {GIVE_UP_SECONDS:.0f}s: a "
                    "long transaction holds them; finish or cancel it (`acme pipeline "
                    "status` names it) and try again"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
