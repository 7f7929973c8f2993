"""Runnable benchmarks of matchcore (see benchmarks/README.md); `python -m benchmarks.<name>`."""
