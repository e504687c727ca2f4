"""Tests of ``bot/db``, one module per job, as in the package."""
