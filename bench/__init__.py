"""Benchmarks of the harness (see bench/README.md)."""
