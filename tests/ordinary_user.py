"""Runs an acme command as an ordinary (non-root) user, for the errors that differ."""

from __future__ import annotations

import json
import os
import traceback

import pytest
from click.testing import CliRunner

from cli.main import acme
from localpg import os_user


def as_ordinary_user(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Runs `acme ARGS` in a child process that has dropped root for the servers' unprivileged
    account (the project's Python lives under /root, which that account cannot enter, so
    the child forks from this one instead of starting afresh). Returns (exit code, stderr)."""
    user = os_user.server_user()
    if user is None:
        pytest.fail("run the suite as root (CI does): this test switches to another user")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ.update(env)
            result = CliRunner().invoke(acme, list(args), catch_exceptions=True)
            shown = result.stderr + (
                "".join(traceback.format_exception(result.exception))
                if result.exception and not isinstance(result.exception, SystemExit)
                else ""
            )
            os.write(write_end, json.dumps([result.exit_code, shown]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        received = pipe.read()
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    exit_code, stderr = json.loads(received)
    return exit_code, stderr
