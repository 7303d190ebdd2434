"""tabserve: from a tabular CSV to a fast, validated, monitored HTTP model service."""

__version__ = "0.1.0"
