"""Tests of ``bot/devtools``, one module per job, as in the package."""
