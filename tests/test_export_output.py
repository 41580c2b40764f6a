"""What an export does to what stands at its output path, with real files, links, FIFOs and
device nodes in a temporary folder (never the real /dev entries): a regular file is replaced
atomically keeping its mode, a link is written through, a pipe or device is streamed into,
anything else is refused with one line, and a stop part-way leaves nothing behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connections.errors import ExportError
from connections.settings import PROJECT_ROOT
from exporter.csv_export import resolve_output
from exporter.output_file import plan_output
from tests.ordinary_user import as_ordinary_user

CSV = b"a,b\n1,2\n"


def write_csv(out) -> int:
    out.write(CSV)
    return 1


def export_to(path) -> int:
    return plan_output(path).write(write_csv)


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path):
    target = tmp_path / "report.csv"
    target.write_bytes(b"old")
    target.chmod(0o600)
    inode = target.stat().st_ino
    export_to(target)
    assert target.read_bytes() == CSV
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != inode, "renamed into place, not rewritten"
    assert leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        export_to(tmp_path / "new.csv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "data.csv"
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    export_to(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == CSV and stat.S_IMODE(real.stat().st_mode) == 0o640
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "real" / "created.csv")
    export_to(dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "created.csv").read_bytes() == CSV


def test_a_fifo_is_streamed_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    export_to(fifo)
    reader.join(timeout=10)
    assert received == [CSV]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_character_device_is_written_through(tmp_path):
    # A node with /dev/null's numbers, made in the temporary folder (root only, as CI is).
    if os.geteuid() != 0:
        pytest.fail("run the suite as root (CI does): making a device node needs it")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    export_to(null)
    assert stat.S_ISCHR(null.stat().st_mode)
    assert leftovers(tmp_path) == []


def test_stdout(capfdbinary):
    plan_output("-").write(write_csv)
    assert capfdbinary.readouterr().out == CSV


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"x"), "is not a folder"),
    ],
)
def test_paths_that_cannot_be_written_are_one_line(tmp_path, make, message):
    base = tmp_path / "thing"
    make(base)
    target = base if message == "is a folder" else base / "x.csv"
    with pytest.raises(ExportError, match=message):
        export_to(target)


def test_a_socket_is_refused(tmp_path):
    import socket

    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(ExportError, match="neither a regular file nor a pipe"):
            export_to(path)


def test_a_file_name_too_long_is_one_line(tmp_path):
    with pytest.raises(ExportError, match="too long"):
        export_to(tmp_path / ("x" * 300 + ".csv"))


def test_a_path_with_a_folder_is_used_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_EXPORT_DIR", str(tmp_path / "exports"))
    assert resolve_output("./pi.csv") == Path("./pi.csv")
    assert resolve_output("pi.csv") == tmp_path / "exports" / "pi.csv"
    assert resolve_output("-") == "-"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_export_leaves_no_temporary_file(tmp_path, signum):
    target = tmp_path / "report.csv"
    target.write_bytes(b"old")
    script = (
        "import os, sys, time\n"
        "from exporter.output_file import plan_output\n"
        "def slow(out):\n"
        "    out.write(b'partial'); out.flush(); print('writing', flush=True); time.sleep(60)\n"
        "plan_output(sys.argv[1]).write(slow)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "writing\n"
    process.send_signal(signum)
    process.wait(timeout=30)
    assert process.returncode != 0
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("output", "env"),
    [
        ("/root/x.csv", {}),
        ("/root/sub/x.csv", {}),
        ("x.csv", {"ACME_EXPORT_DIR": "/root"}),
        ("x.csv", {"ACME_EXPORT_DIR": "/root/sub"}),
    ],
)
def test_an_unwritable_path_as_an_ordinary_user_is_one_line(output, env):
    exit_code, stderr = as_ordinary_user(
        "top_customers",
        "-o",
        output,
        env={"ACME_ANALYTICS_DSN": "postgresql://u:p@127.0.0.1:1/analytics_db", **env},
    )
    assert exit_code == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "permission" in lines[0].lower()


@pytest.mark.parametrize(
    ("args", "home"),
    [
        (("local", "status"), "/root/h"),
        (("local", "up"), "/root/h"),
        (("local", "up"), "/etc/acmeh"),
    ],
)
def test_an_unusable_acme_home_as_an_ordinary_user_is_one_line(args, home):
    exit_code, stderr = as_ordinary_user(*args, env={"ACME_HOME": home})
    assert exit_code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
