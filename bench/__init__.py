"""Topup Gateway benchmark: `make bench` / `python -m bench.run --help`."""
