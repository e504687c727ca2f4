"""General helpers with no domain in them: retry timing (``backoff``).

The bottom layer: it imports nothing of ours, only the standard library, so every layer may use
it (``tests/test_layout.py``).
"""
