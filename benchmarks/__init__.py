"""Benchmarks of the project's training path: run `python -m benchmarks` (see benchmarks/README.md)."""
