"""Benchmarks: run each as a script (`uv run python benchmarks/NAME.py`); tests import some as modules."""
