"""The pgbench order workload and the harness the torture, crash and restart tests share."""
