"""Read-only queries behind the operator pages, the operator API and the metrics: each takes a
transaction and returns typed rows, so entrypoints never touch tables."""
