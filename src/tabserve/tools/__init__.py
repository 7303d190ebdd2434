"""Developer tools that are not part of serving or training (e.g. installing perf_analyzer)."""
