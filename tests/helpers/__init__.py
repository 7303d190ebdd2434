"""Scripts the tests run as separate processes (they are not tests themselves)."""
