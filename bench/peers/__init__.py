"""The systems kup is measured against, each run in its own virtualenv (``bench.side_by_side``)."""
