"""recpipe: an end-to-end recommendation pipeline, from a shop's database to real-time picks."""

__version__ = "0.1.0"
