"""The benchmark suite (`make bench`, `make bench-quick`); see bench/README.md."""
