"""One module per benchmark figure; each returns rows for the results table."""
