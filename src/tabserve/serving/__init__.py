"""tabserve.serving."""
