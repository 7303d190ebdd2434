"""tabserve.monitoring."""
