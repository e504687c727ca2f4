"""Tests of ``bot/slack``, one module per job, as in the package."""
