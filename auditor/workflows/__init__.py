"""Commands composed from the pipeline: CI gate, fetch/lock/verify, demo."""
