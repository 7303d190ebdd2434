"""tabserve.loadtest."""
