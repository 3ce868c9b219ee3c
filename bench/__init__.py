"""Benchmarks: `make bench` (python -m bench) prints the tables."""
