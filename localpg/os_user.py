"""PostgreSQL refuses to run as root. When we are root, the servers run as an unprivileged
system user, which must be able to reach the binaries and own the data folders."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from connections.errors import LocalServerError

SERVER_OS_USER = "acme-postgres"


def running_as_root() -> bool:
    return os.geteuid() == 0


def server_user() -> pwd.struct_passwd | None:
    """The account the servers run as, created when needed; None when we are not root."""
    if not running_as_root():
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_OS_USER,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        try:  # another process (a parallel test worker) created it first
            return pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            pass
        raise LocalServerError(
            f"running as root, PostgreSQL needs an unprivileged user, and creating "
            f"'{SERVER_OS_USER}' failed ({exc}): create it with useradd, or run as a normal user"
        ) from exc
    return pwd.getpwnam(SERVER_OS_USER)


def hand_over(path: Path, user: pwd.struct_passwd | None) -> None:
    """Gives a folder to the server's account and lets it traverse the folders above."""
    if user is None:
        return
    for current, _dirs, files in os.walk(path):
        os.chown(current, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(os.path.join(current, name), user.pw_uid, user.pw_gid)
    allow_traversal_to(path.parent)


def allow_traversal_to(path: Path) -> None:
    """Adds search (not read) permission for others on every folder from / down to path."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def run_as(
    user: pwd.struct_passwd | None, args: list[str], **kwargs
) -> subprocess.CompletedProcess:
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.run(args, capture_output=True, text=True, **kwargs)
