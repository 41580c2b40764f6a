"""`python -m bench.peak_rss COMMAND...`: runs COMMAND and prints its peak RSS in KiB on the
last line of stderr. A child's ru_maxrss counts what it inherited when forked, so a child of
the benchmark process (which holds dbt in memory) would be charged for the benchmark's own
memory; forked from this small process instead, it is charged for its own."""

import os
import subprocess
import sys

if __name__ == "__main__":
    process = subprocess.Popen(sys.argv[1:])
    _pid, status, usage = os.wait4(process.pid, 0)
    print(f"peak_rss_kib={usage.ru_maxrss}", file=sys.stderr)
    sys.exit(os.waitstatus_to_exitcode(status))
