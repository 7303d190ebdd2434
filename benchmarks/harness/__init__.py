"""The serving benchmark's pieces; ``benchmarks/serving.py`` is the entry point that runs them."""
