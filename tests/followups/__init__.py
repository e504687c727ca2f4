"""Tests of ``bot/followups``, one module per job, as in the package."""
