"""tabserve.training."""
