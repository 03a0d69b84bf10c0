"""Benchmarks: ``./dev.sh bench`` or ``python -m bench`` (see docs/benchmarks.md)."""
