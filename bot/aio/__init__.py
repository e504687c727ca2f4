"""General async helpers with no domain in them, each usable by any layer:

* ``backoff``: the one exponential backoff formula;
* ``ratelimit``: a token bucket with two priorities, and one bucket per key;
* ``fairness``: per-tenant concurrency slots under one global cap, served in turn;
* ``cache``: a bounded mapping whose entries expire;
* ``background``: the ack-first gate and tracked background tasks that shutdown drains.

The bottom layer: it imports nothing of ours, only the standard library, so every layer may use
it (``tests/test_layout.py``).
"""
