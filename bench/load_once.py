"""One loader run in its own process, for its peak memory: `python -m bench.load_once`
(the pair comes from ACME_FINANCE_DSN / ACME_ANALYTICS_DSN). Prints the result as JSON."""

from loader.copy_changes import load_changes

if __name__ == "__main__":
    result = load_changes()
    print(f'{{"changes": {result.changes}, "seconds": {result.seconds}}}')
